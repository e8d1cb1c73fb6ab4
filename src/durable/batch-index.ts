// Indexes of batches in R2, newest first: one per tenant and pool (what GET /v1/batches lists) and
// one of every batch with its owner and status in metadata (what GET /admin/batches filters).
import type { BatchRecord, BatchStatus } from "../core/batch-state.ts";

/** Far beyond any epoch ms, so that newest-first is R2's lexicographic order. */
const NEWEST_FIRST_BASE = 10 ** 14;
const ALL_PREFIX = "batch-all/";

/** An index key's tail: listed in lexicographic order, the newest comes first. */
export const newestFirst = (createdMs: number, id: string) =>
	`${String(NEWEST_FIRST_BASE - createdMs).padStart(15, "0")}_${id}`;

/** A key's batch id: keys end in 15 digits of order, "_", the id. */
const idOf = (key: string) => key.slice(key.lastIndexOf("/") + 17);

export const tenantIndexPrefix = (pool: string, tenant: string) =>
	`batch-index/${encodeURIComponent(pool)}/${encodeURIComponent(tenant)}/`;

type Indexed = Pick<BatchRecord, "id" | "pool" | "tenant" | "createdMs">;

export const tenantIndexKey = (batch: Indexed) =>
	`${tenantIndexPrefix(batch.pool, batch.tenant)}${newestFirst(batch.createdMs, batch.id)}`;

const allIndexKey = (batch: Indexed) => `${ALL_PREFIX}${newestFirst(batch.createdMs, batch.id)}`;

/** Writes (or rewrites, when its status changed) the batch's entry in the index of all batches. */
export async function indexBatch(bucket: R2Bucket, record: BatchRecord): Promise<void> {
	await bucket.put(allIndexKey(record), "", {
		customMetadata: { tenant: record.tenant, pool: record.pool, status: record.status },
	});
}

export async function unindexBatch(bucket: R2Bucket, record: Indexed): Promise<void> {
	await bucket.delete([allIndexKey(record), tenantIndexKey(record)]);
}

export interface BatchFilter {
	tenant?: string;
	pool?: string;
	status?: BatchStatus;
}

/**
 * Up to `limit` batch ids of an index, newest first, after the entry of `after` (a batch), that
 * pass `filter` (on the index of all batches). Reads R2's pages until the page is full.
 */
export async function listIndex(
	bucket: R2Bucket,
	scope: { prefix: string } | { all: BatchFilter },
	after: Indexed | undefined,
	limit: number,
): Promise<{ ids: string[]; hasMore: boolean }> {
	const prefix = "prefix" in scope ? scope.prefix : ALL_PREFIX;
	const filter = "all" in scope ? scope.all : {};
	const keep = (meta: Record<string, string> | undefined) =>
		(filter.tenant === undefined || meta?.tenant === filter.tenant) &&
		(filter.pool === undefined || meta?.pool === filter.pool) &&
		(filter.status === undefined || meta?.status === filter.status);
	const ids: string[] = [];
	let startAfter = after && `${prefix}${newestFirst(after.createdMs, after.id)}`;
	for (;;) {
		const page = await bucket.list({
			prefix,
			...(startAfter && { startAfter }),
			...("all" in scope && {
				include: ["customMetadata"] as ("customMetadata" | "httpMetadata")[],
			}),
		});
		for (const object of page.objects) {
			if (!keep(object.customMetadata)) continue;
			if (ids.length === limit) return { ids, hasMore: true };
			ids.push(idOf(object.key));
		}
		const last = page.objects.at(-1);
		if (!page.truncated || !last) return { ids, hasMore: false };
		startAfter = last.key;
	}
}
