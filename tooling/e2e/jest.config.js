import { jestConfig } from '../../tooling/config/jest.config.base.js';

export default jestConfig();
