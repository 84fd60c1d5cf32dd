/** NLE project files: which media a project references, and where they are in the repo. */
export { parseProjectReferences, parseProjectBytes, type ParseProjectOptions, type ProjectInput } from './parse-project-references.js';
export { resolveReferences, type ResolvedReference } from './resolve-references.js';
export type { ProjectFormat, ProjectReference, ProjectReferences, ReferenceOrigin } from './project-reference.js';
export { fileUrlToPath } from './file-url.js';
