import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import jsonc from 'jsonc-parser';
import { ConfigurationError } from '../errors.js';
import { isPlainObject } from './section-reader.js';

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Parse Orthanc configuration text, which may hold `//` and `/* *\/` comments. */
export function parseOrthancConfigText(text: string, source: string): Record<string, unknown> {
  const errors: jsonc.ParseError[] = [];
  const value: unknown = jsonc.parse(text, errors, {
    disallowComments: false,
    allowTrailingComma: true,
    allowEmptyContent: false,
  });
  const first = errors[0];
  if (first) {
    const { line, column } = lineAndColumn(text, first.offset);
    throw new ConfigurationError(
      `invalid configuration file ${source}:${line}:${column}: JSON syntax error (${jsonc.printParseErrorCode(first.error)})`,
    );
  }
  if (!isPlainObject(value)) {
    throw new ConfigurationError(`invalid configuration file ${source}: the top level must be a JSON object`);
  }
  return value;
}

/**
 * Orthanc replaces `${NAME}` in configuration files with the environment variable's value
 * (empty when unset); `${NAME:-default}` gives a default.
 */
export function substituteEnvironment(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_match, name: string, fallback?: string) => {
      const value = env[name];
      return value !== undefined && value !== '' ? value : (fallback ?? '');
    },
  );
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigurationError(`cannot read configuration file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseOrthancConfigText(substituteEnvironment(text), path);
}

/** Read an Orthanc configuration file, or a folder of `.json` files merged as Orthanc does. */
export async function readOrthancConfiguration(path: string): Promise<Record<string, unknown>> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    throw new ConfigurationError(`cannot read configuration ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!isDirectory) return readConfigFile(path);

  const names = (await readdir(path, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && entry.name.toLowerCase().endsWith('.json'))
    .map((entry) => entry.name)
    .sort();
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const name of names) {
    const file = join(path, name);
    for (const [key, value] of Object.entries(await readConfigFile(file))) {
      const previous = origin.get(key);
      if (previous !== undefined) {
        throw new ConfigurationError(
          `invalid configuration folder ${path}: top-level key "${key}" is defined in both ${previous} and ${file}; Orthanc refuses that`,
        );
      }
      origin.set(key, file);
      merged[key] = value;
    }
  }
  return merged;
}
