import { ConfigurationError } from '../errors.js';

/** Values of these keys never appear in messages. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'SecretKey',
  'AccessKey',
  'ConnectionString',
  'AccountKey',
]);

const MAX_SHOWN_CHARS = 200;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a value is shown in a message: JSON, shortened; secrets redacted. */
export function describeValue(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key)) return '<redacted>';
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return shown.length > MAX_SHOWN_CHARS ? `${shown.slice(0, MAX_SHOWN_CHARS)}...` : shown;
}

interface IntegerRule {
  readonly min: number;
  readonly max: number;
  readonly unit?: string;
}

/**
 * Typed, strict access to one configuration section (Orthanc's rules: case-sensitive keys,
 * JSON types as given, no coercion). Every failure names section, key, value and what is allowed.
 */
export class SectionReader {
  constructor(
    /** For messages: `AwsS3Storage` or `AwsS3Storage.StorageEncryption`. */
    readonly path: string,
    readonly values: Readonly<Record<string, unknown>>,
    /** Every key this section understands, for the unknown-key warning. */
    readonly knownKeys: readonly string[],
  ) {}

  has(key: string): boolean {
    this.assertKnown(key);
    return Object.prototype.hasOwnProperty.call(this.values, key);
  }

  raw(key: string): unknown {
    return this.has(key) ? this.values[key] : undefined;
  }

  fail(key: string, value: unknown, allowed: string): never {
    throw new ConfigurationError(
      `invalid configuration: "${this.path}" key "${key}" has value ${describeValue(key, value)}; allowed: ${allowed}`,
    );
  }

  missing(key: string, allowed: string): never {
    throw new ConfigurationError(
      `invalid configuration: "${this.path}" key "${key}" is required; allowed: ${allowed}`,
    );
  }

  optionalString(key: string, allowed = 'a non-empty string'): string | undefined {
    if (!this.has(key)) return undefined;
    const value = this.values[key];
    if (typeof value !== 'string' || value.length === 0) this.fail(key, value, allowed);
    return value;
  }

  requiredString(key: string, allowed = 'a non-empty string'): string {
    const value = this.optionalString(key, allowed);
    if (value === undefined) this.missing(key, allowed);
    return value;
  }

  boolean(key: string, defaultValue: boolean): boolean {
    if (!this.has(key)) return defaultValue;
    const value = this.values[key];
    if (typeof value !== 'boolean')
      this.fail(key, value, `true or false (JSON boolean, default ${defaultValue})`);
    return value;
  }

  integer(key: string, defaultValue: number | undefined, rule: IntegerRule): number | undefined {
    if (!this.has(key)) return defaultValue;
    const value = this.values[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > rule.max) {
      const unit = rule.unit ? ` ${rule.unit}` : '';
      const byDefault = defaultValue === undefined ? '' : `, default ${defaultValue}`;
      this.fail(key, value, `an integer from ${rule.min} to ${rule.max}${unit}${byDefault}`);
    }
    return value;
  }

  integerWithDefault(key: string, defaultValue: number, rule: IntegerRule): number {
    return this.integer(key, defaultValue, rule) as number;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], defaultValue: T): T;
  oneOf<T extends string>(key: string, allowed: readonly T[], defaultValue: undefined): T | undefined;
  oneOf<T extends string>(key: string, allowed: readonly T[], defaultValue: T | undefined): T | undefined {
    if (!this.has(key)) return defaultValue;
    const value = this.values[key];
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      const byDefault = defaultValue === undefined ? '' : ` (default ${defaultValue})`;
      this.fail(key, value, `one of ${allowed.join(', ')}${byDefault}; values are case-sensitive`);
    }
    return value as T;
  }

  /** A nested object section, or undefined when absent. */
  section(key: string, knownKeys: readonly string[]): SectionReader | undefined {
    if (!this.has(key)) return undefined;
    const value = this.values[key];
    if (!isPlainObject(value)) this.fail(key, value, 'a JSON object');
    return new SectionReader(`${this.path}.${key}`, value, knownKeys);
  }

  /** A warning naming keys this section does not know, or undefined. */
  unknownKeysWarning(): string | undefined {
    const unknown = Object.keys(this.values).filter((key) => !this.knownKeys.includes(key));
    if (unknown.length === 0) return undefined;
    const hints = unknown
      .map((key) => {
        const sameButCase = this.knownKeys.find((known) => known.toLowerCase() === key.toLowerCase());
        return sameButCase ? `"${key}" (did you mean "${sameButCase}"? keys are case-sensitive)` : `"${key}"`;
      })
      .join(', ');
    return `"${this.path}": unknown key(s) ${hints} ignored; known keys: ${this.knownKeys.join(', ')}`;
  }

  private assertKnown(key: string): void {
    if (!this.knownKeys.includes(key)) {
      throw new Error(`internal: "${key}" is not declared as a key of "${this.path}"`);
    }
  }
}
