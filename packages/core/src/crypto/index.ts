export { A1_OVERHEAD, type MasterKey } from './a1-format.js';
export { createA1EncryptStream, type A1EncryptOptions } from './a1-encrypt-stream.js';
export { createA1DecryptStream, type A1DecryptOptions } from './a1-decrypt-stream.js';
export { ByteBudget } from './byte-budget.js';
export { Keyring, loadKeyring, loadMasterKey, decodeKeyFile, checkKeyId } from './keyring.js';
export { createEncryptedStorage, createEncryptionLayer, EncryptedStorage } from './encrypted-storage.js';
