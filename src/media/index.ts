/**
 * Media awareness: container structure and cut plans (MP4/QuickTime), human text for
 * inspect and diff, and NLE project references. See README.md in this folder.
 */
export { analyzeContainer, analyzeFile, identifyOtherContainer, type AnalyzeOptions } from './analyze-container.js';
export {
  MEDIA_STRUCTURE_VERSION,
  emptyCutPlan,
  isMediaStructure,
  startsAtKeyframe,
  type ContainerAnalysis,
  type ContainerKind,
  type CutPlan,
  type CutRegion,
  type MediaStructure,
  type MediaTrack,
  type TrackType,
} from './media-structure.js';
export { bufferReader, openFileReader, type ClosableReader, type RandomAccessReader } from './random-access-reader.js';
export { describeCodec, describeTrack, diffStructures, formatAnalysis, formatDuration, formatStructure } from './format-structure.js';
export { formatTimecode, parseTimecode } from './timecode.js';
export * from './nle/index.js';
