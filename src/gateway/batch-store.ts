// What the batch routes of both APIs share: creating a batch (its object, its index entry, its lines
// queued), finding one the caller owns, and listing a tenant's batches newest first.
import type { Context } from "hono";
import type { BatchApi, BatchInputError, BatchView, NewBatch } from "../durable/batch.ts";
import { newId } from "../durable/batch-files.ts";
import {
	listIndex,
	tenantIndexKey,
	tenantIndexPrefix,
	unindexBatch,
} from "../durable/batch-index.ts";
import {
	BATCH_INPUT_LIMITS,
	type BatchInputLimits,
	type BatchLine,
} from "../providers/batch-input.ts";
import { isRecord, parseJson } from "../providers/estimate.ts";
import { enqueueLines } from "./batch-queue.ts";
import { webhookTarget } from "./batch-webhook.ts";
import { endUserOf } from "./budget-gate.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";
import { modelRefusal } from "./model-rule.ts";
import { readBody } from "./request-body.ts";

/** What a batch's lines are checked against: the size limits and the tenant's model rule. */
export function batchInputLimits(c: Context<GatewayEnv>): BatchInputLimits {
	const tenant = c.get("tenant");
	const config = c.get("config");
	return {
		...BATCH_INPUT_LIMITS,
		refuseModel: (model, body) =>
			modelRefusal(tenant, config.prices, model, endUserOf(new Headers(), body))?.message,
	};
}

/**
 * Creates the batch object, lists it for its tenant, and queues its lines; given its input's
 * errors instead, creates it failed (OpenAI's answer to a file whose lines are bad).
 */
export async function createBatch(
	c: Context<GatewayEnv>,
	api: BatchApi,
	batch: Omit<NewBatch, "id" | "api" | "tenant" | "pool" | "total" | "webhook">,
	input: { lines: BatchLine[] } | { errors: BatchInputError[] },
	windowMs: number,
): Promise<BatchView> {
	const id = newId(api === "openai" ? "batch_" : "msgbatch_");
	const owner = { tenant: c.get("tenant").name, pool: c.get("pool").name };
	const lines = "lines" in input ? input.lines : [];
	const webhook = webhookTarget(c, batch.metadata?.webhook_url);
	const view = await c.env.BATCH.getByName(id).create(
		{ ...batch, ...owner, id, api, total: lines.length, ...(webhook && { webhook }) },
		lines.map((line) => line.customId),
		windowMs,
		"errors" in input ? input.errors : [],
	);
	await c.env.BATCH_FILES.put(tenantIndexKey(view.record), "");
	await enqueueLines(c.env.BATCH_LINES, { ...owner, batchId: id }, lines);
	return view;
}

/** The batch if the caller's tenant owns it in this pool; anyone else's is not found. */
export async function ownedBatch(
	c: Context<GatewayEnv>,
	id: string,
	notFound: string,
): Promise<BatchView> {
	if (!/^(msgbatch_|batch_)[0-9a-f]{32}$/.test(id)) {
		throw new GatewayError(404, notFound, "batch_not_found");
	}
	const view = await c.env.BATCH.getByName(id).view();
	const tenant = c.get("tenant");
	const pool = c.get("pool");
	if (view && view.record.tenant === tenant.name && view.record.pool === pool.name) return view;
	throw new GatewayError(404, notFound, "batch_not_found");
}

/** Removes a deleted batch from the listings. */
export async function unlistBatch(c: Context<GatewayEnv>, view: BatchView): Promise<void> {
	await unindexBatch(c.env.BATCH_FILES, view.record);
}

/** A page of the tenant's batches, newest first, after the batch `afterId` when given. */
export async function listBatches(
	c: Context<GatewayEnv>,
	afterId: string | undefined,
	limit: number,
): Promise<{ views: BatchView[]; hasMore: boolean }> {
	const after =
		afterId === undefined ? undefined : await ownedBatch(c, afterId, afterNotFound(afterId));
	const prefix = tenantIndexPrefix(c.get("pool").name, c.get("tenant").name);
	const { ids, hasMore } = await listIndex(c.env.BATCH_FILES, { prefix }, after?.record, limit);
	return { views: await viewsOf(c.env, ids), hasMore };
}

const afterNotFound = (id: string) => `after: no batch with id '${id}'.`;

/** The batches' views, in order, leaving out any deleted meanwhile. */
export async function viewsOf(env: Env, ids: string[]): Promise<BatchView[]> {
	const views = await Promise.all(ids.map((id) => env.BATCH.getByName(id).view()));
	return views.filter((view) => view !== undefined);
}

/** A page size from the query: 1 to `max`, default `fallback`. */
export function pageLimit(raw: string | undefined, fallback: number, max: number): number {
	if (raw === undefined) return fallback;
	const limit = Number(raw);
	if (!Number.isInteger(limit) || limit < 1 || limit > max) {
		throw new GatewayError(400, `limit must be a whole number from 1 to ${max}.`, "bad_limit");
	}
	return limit;
}

/** A batch-creating request's JSON object, read within the gateway's body limit. */
export async function readJsonObject(c: Context<GatewayEnv>): Promise<Record<string, unknown>> {
	const raw = await readBody(c.req.raw, c.get("config").maxBodyBytes);
	const parsed = raw && parseJson(new TextDecoder().decode(raw));
	if (!isRecord(parsed)) {
		throw new GatewayError(400, "The request body must be a JSON object.", "bad_json");
	}
	return parsed;
}
