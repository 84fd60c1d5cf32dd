/**
 * Token authentication. A request carries its token as `Authorization: Bearer <token>`
 * or as HTTP Basic with the token as the password (git credential helpers store
 * username/password pairs; the username is not checked, the token alone identifies the
 * user).
 */
import type { ServerDb } from './db.js';
import { hashToken } from './admin.js';

export interface Principal {
  userId: number;
  name: string;
  isAdmin: boolean;
  tokenId: number;
}

/** The token in an Authorization header, or undefined when absent or malformed. */
export function tokenFromAuthorization(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value.length === 0 || value.length > 1024) return undefined;
  if (scheme === 'bearer') return value;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const password = decoded.slice(colon + 1);
    return password.length > 0 ? password : undefined;
  }
  return undefined;
}

export interface Authenticator {
  /** The token's user, or undefined for an unknown or revoked token. */
  authenticate(token: string): Principal | undefined;
}

/**
 * Looks tokens up by hash. `last_used_at` is written at most once per
 * `lastUsedResolutionMs` per token, so authentication does not add a write to every
 * request (the figure is "last used, to the minute", which is what revocation
 * decisions need).
 */
export function createAuthenticator(
  db: ServerDb,
  opts: { clock: () => Date; lastUsedResolutionMs?: number },
): Authenticator {
  const resolution = opts.lastUsedResolutionMs ?? 60_000;
  const lastWritten = new Map<number, number>();
  return {
    authenticate(token) {
      const row = db
        .stmt(
          `SELECT t.id AS token_id, u.id AS user_id, u.name, u.is_admin
           FROM tokens t JOIN users u ON u.id = t.user_id
           WHERE t.hash = ? AND t.revoked_at IS NULL`,
        )
        .get(hashToken(token)) as { token_id: number; user_id: number; name: string; is_admin: number } | undefined;
      if (row === undefined) return undefined;
      const now = opts.clock();
      const prev = lastWritten.get(row.token_id);
      if (prev === undefined || now.getTime() - prev >= resolution) {
        lastWritten.set(row.token_id, now.getTime());
        db.stmt('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(now.toISOString(), row.token_id);
      }
      return { userId: row.user_id, name: row.name, isAdmin: row.is_admin === 1, tokenId: row.token_id };
    },
  };
}
