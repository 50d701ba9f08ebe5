import { LocalBus } from '../../src/bus/local.js';
import { busContract } from './bus-contract.js';

busContract('local', async (count) => Array.from({ length: count }, () => new LocalBus()), false);
