import { GatewayServices } from '../gateway/services.js';
import type { Logger } from '../logging.js';
import type { StorageStack } from '../storage/compose.js';
import { locationsRoute } from './locate.js';
import { moveStorageJob, moveStorageRoute } from './move-storage.js';

/**
 * What the gateway serves besides storage: "where is it" always; `/move-storage` and its job
 * only in hybrid mode, as the C++ plugins do.
 */
export function createGatewayServices(stack: StorageStack, log: Logger): GatewayServices {
  const hybrid = stack.hybridMode !== 'Disabled';
  return new GatewayServices(
    [locationsRoute(stack.sides), ...(hybrid ? [moveStorageRoute()] : [])],
    hybrid ? [moveStorageJob(stack.sides, log)] : [],
    log,
  );
}
