import type Database from 'better-sqlite3';
import { forbiddenProject, unauthorized } from './errors.js';
import { type TokenProjects, verifyToken } from './tokens.js';

/** Who a request acts as: the token it presented and the projects that token opens. */
export interface Principal {
  tokenId: string;
  projects: TokenProjects;
}

/**
 * Resolves the `Authorization` header of a request to a principal, on every request
 * (invariant 9): a revoked token stops working at once. Throws 401 otherwise.
 */
export function authenticate(db: Database.Database, header: string | undefined): Principal {
  if (header === undefined || header.length === 0) {
    throw unauthorized('this request carries no token');
  }
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match === null) {
    throw unauthorized("the Authorization header is not of the form 'Bearer <token>'");
  }

  const token = verifyToken(db, match[1] as string);
  if (token === undefined) throw unauthorized('the token is unknown or revoked');
  return { tokenId: token.id, projects: token.projects };
}

export function canAccess(principal: Principal, project: string): boolean {
  return principal.projects === '*' || principal.projects.includes(project);
}

/** Throws 403 unless the principal may use `project`; for requests that name the project. */
export function assertProjectAccess(principal: Principal, project: string): void {
  if (!canAccess(principal, project)) throw forbiddenProject(project);
}
