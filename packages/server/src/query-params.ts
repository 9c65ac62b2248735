import { isProjectName } from '@tidemark/core';
import { badRequest } from './errors.js';

/** The `project` query parameter, required and well-formed. */
export function projectParam(url: URL): string {
  const project = url.searchParams.get('project');
  if (project === null) {
    throw badRequest(
      'missing_project',
      'the query parameter project is required',
      '?project=team/mnist',
    );
  }
  if (!isProjectName(project)) {
    throw badRequest(
      'invalid_project',
      'the query parameter project is not a valid project name',
      "Project names look like 'name' or 'workspace/name' (letters, digits, '.', '_', '-').",
    );
  }
  return project;
}

/** An optional positive integer query parameter no larger than `max`. */
export function integerParam(url: URL, name: string, fallback: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw badRequest(
      `invalid_${name}`,
      `the query parameter ${name} must be an integer from 1 to ${max}`,
    );
  }
  return value;
}
