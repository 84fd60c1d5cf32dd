export {
  Chunker,
  chunkBuffer,
  nativeChunkerAvailable,
  defaultChunkerImplementation,
  DEFAULT_CHUNKER_PARAMS,
  validateChunkerParams,
  type ChunkerParams,
  type ChunkerOptions,
  type ChunkerImplementation,
} from './chunker.js';
export { GEAR, GEAR_SEED } from './gear.js';
