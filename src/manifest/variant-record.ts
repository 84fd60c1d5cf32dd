/**
 * A variant of an original file version: its proxy, poster, sprite sheet (and the sheet's
 * WebVTT index) or web preview. Keyed by the ORIGINAL's file id (the BLAKE3 of the whole
 * original), never by a path: any clone of any branch finds them, and a renamed file keeps
 * its proxy. An `ok` variant is stored content like any tracked file (chunked, in packs,
 * with a manifest); a `failed` one records why, with ffmpeg's last lines, and is never
 * offered to a checkout.
 *
 * Plain JSON: the same object is a row of the local index (src/store/variant-index.ts) and
 * an object on a remote (remote-variants.ts). Readers ignore fields they do not know.
 */
import { isId } from '../hashing/blake3.js';

export const VARIANT_KINDS = ['proxy', 'poster', 'sprite', 'sprite-vtt', 'preview'] as const;
export type VariantKind = (typeof VARIANT_KINDS)[number];

export interface VariantRecord {
  /** The original's file id. */
  original: string;
  kind: VariantKind;
  /** The settings it was made with (recipe.ts), e.g. 'prores_proxy/h1080'; '' when none apply. */
  recipe: string;
  status: 'ok' | 'failed';
  /** ok: the variant as stored content. */
  fileId?: string;
  size?: number;
  manifest?: string;
  /** failed: why, and ffmpeg's last lines. */
  reason?: string;
  ffmpegTail?: string[];
  /** Kept with ok variants too, e.g. a variable-frame-rate source made constant. */
  warnings: string[];
  /** What was checked against the original, and the differences measured. */
  fidelity?: Record<string, unknown>;
  /** ms since the epoch. */
  createdAt: number;
}

/** Checks a record read from a remote or an old index: the fields every reader relies on. */
export function parseVariantRecord(value: unknown): VariantRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  if (typeof r.original !== 'string' || !isId(r.original)) return null;
  if (typeof r.kind !== 'string' || !(VARIANT_KINDS as readonly string[]).includes(r.kind)) return null;
  if (typeof r.recipe !== 'string') return null;
  if (r.status !== 'ok' && r.status !== 'failed') return null;
  if (r.status === 'ok') {
    if (typeof r.fileId !== 'string' || !isId(r.fileId)) return null;
    if (typeof r.manifest !== 'string' || !isId(r.manifest)) return null;
    if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) return null;
  }
  const warnings = Array.isArray(r.warnings) ? r.warnings.filter((w): w is string => typeof w === 'string') : [];
  const createdAt = typeof r.createdAt === 'number' ? r.createdAt : 0;
  return { ...(r as unknown as VariantRecord), warnings, createdAt };
}
