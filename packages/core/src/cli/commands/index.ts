import type { Command } from '../command.js';
import { decrypt } from './decrypt.js';
import { encrypt } from './encrypt.js';
import { inspect } from './inspect.js';
import { keygen } from './keygen.js';
import { reencrypt } from './reencrypt.js';
import { verify } from './verify.js';

/** Every subcommand, in the order the help lists them. */
export const commands: readonly Command[] = [keygen, encrypt, decrypt, inspect, verify, reencrypt];
