/**
 * The project's search attributes must exist in the namespace before the first task starts.
 * The embedded dev server registers them at boot; on a cluster we add the missing ones, and where
 * that is not allowed (Temporal Cloud) fail with the exact command an operator should run.
 */
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../../workflows/task-contract.js';
import { AsyncQueueError } from './errors.js';

const { IndexedValueType } = proto.temporal.api.enums.v1;

/** The server's type for each type name SEARCH_ATTRIBUTES uses (the CLI's and the UI's names). */
const INDEXED_VALUE_TYPES: Record<(typeof SEARCH_ATTRIBUTES)[number]['type'], proto.temporal.api.enums.v1.IndexedValueType> = {
  Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

export class SearchAttributesMissingError extends AsyncQueueError {
  readonly code = 'search_attributes_missing';
}

export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set([...Object.keys(existing.customAttributes ?? {}), ...Object.keys(existing.systemAttributes ?? {})]);
  const missing = SEARCH_ATTRIBUTES.filter((attribute) => !known.has(attribute.name));
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((attribute) => [attribute.name, INDEXED_VALUE_TYPES[attribute.type]])),
    });
  } catch (err) {
    const commands = missing
      .map(
        (attribute) =>
          `  temporal operator search-attribute create --namespace ${namespace} --name ${attribute.name} --type ${attribute.type}\n` +
          `  (Temporal Cloud: tcld namespace search-attributes add --namespace ${namespace} --sa "${attribute.name}=${attribute.type}")`,
      )
      .join('\n');
    throw new SearchAttributesMissingError(
      `search attributes ${missing.map((a) => a.name).join(', ')} are missing in namespace "${namespace}" and could not be added (${(err as Error).message}). Run:\n${commands}`,
      { cause: err },
    );
  }
  return missing.map((attribute) => attribute.name);
}
