// GET /admin/batches: every tenant's batches, newest first, with status and counts, filtered by
// tenant, pool and status and paged by `limit` and `after` (behind the admin token, as all /admin).
import { Hono } from "hono/tiny";
import type { BatchView, WebhookStatus } from "../durable/batch.ts";
import { listIndex } from "../durable/batch-index.ts";
import { batchesQuerySchema, parseBody } from "./admin-schemas.ts";
import { viewsOf } from "./batch-store.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

export const adminBatches = new Hono<GatewayEnv>();

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** A batch as an operator sees it, in either API: the admin API's own camelCase shape. */
function adminBatch({ record, counts, webhook }: BatchView) {
	return {
		id: record.id,
		api: record.api,
		tenant: record.tenant,
		pool: record.pool,
		status: record.status,
		endpoint: record.endpoint,
		createdAt: iso(record.createdMs),
		expiresAt: iso(record.expiresMs),
		endedAt: iso(record.completedMs ?? record.failedMs ?? record.cancelledMs ?? record.expiredMs),
		counts,
		outputFileId: record.outputFileId ?? null,
		errorFileId: record.errorFileId ?? null,
		webhook: record.webhook ? webhookOf(record.webhook.url, webhook) : null,
	};
}

/** The batch's webhook: "waiting" for the batch to end, then pending, delivered or gave_up. */
function webhookOf(url: string, status: WebhookStatus | undefined) {
	return {
		url,
		state: status?.state ?? "waiting",
		attempts: status?.attempts ?? 0,
		nextAt: iso(status?.nextMs),
	};
}

adminBatches.get("/batches", async (c) => {
	const query = parseBody(batchesQuerySchema, c.req.query(), "query");
	const limit = query.limit === undefined ? 20 : Number(query.limit);
	let after: BatchView | undefined;
	if (query.after !== undefined) {
		after = /^(msgbatch_|batch_)[0-9a-f]{32}$/.test(query.after)
			? await c.env.BATCH.getByName(query.after).view()
			: undefined;
		if (!after) {
			throw new GatewayError(
				400,
				`query.after: no batch with id "${query.after}".`,
				"invalid_query",
				{
					details: { param: "query.after", code: "invalid_query" },
				},
			);
		}
	}
	const { tenant, pool, status } = query;
	const { ids, hasMore } = await listIndex(
		c.env.BATCH_FILES,
		{ all: { tenant, pool, status } },
		after?.record,
		limit,
	);
	const batches = (await viewsOf(c.env, ids)).map(adminBatch);
	return c.json({ batches, hasMore, lastId: batches.at(-1)?.id ?? null });
});
