// Anthropic's Message Batches API under an Anthropic pool: /<pool>/v1/messages/batches in
// Anthropic's shapes, so anthropic.messages.batches.* works with only the base URL changed.
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { type BatchView, isTerminal } from "../durable/batch.ts";
import { deleteFile, findFile, readFileText } from "../durable/batch-files.ts";
import { checkAnthropicRequests, problemsMessage } from "../providers/batch-input.ts";
import {
	batchInputLimits,
	createBatch,
	listBatches,
	ownedBatch,
	pageLimit,
	readJsonObject,
	unlistBatch,
} from "./batch-store.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

/** Anthropic's batches have a fixed window of 24 hours. */
const WINDOW_MS = 24 * 3_600_000;

export const anthropicBatches = new Hono<GatewayEnv>();

// Only on these routes: a sub-app's "*" would run for every /<pool>/v1 path, the proxy's too.
for (const path of ["/messages/batches", "/messages/batches/*"]) {
	anthropicBatches.use(path, anthropicPoolsOnly);
}

async function anthropicPoolsOnly(c: Context<GatewayEnv>, next: () => Promise<void>) {
	if (c.get("pool").provider !== "anthropic") {
		throw new GatewayError(
			404,
			`Pool "${c.get("pool").name}" is an OpenAI pool: use /${c.get("pool").name}/v1/batches.`,
			"unknown_route",
		);
	}
	await next();
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function batchObject(c: Context<GatewayEnv>, { record, counts }: BatchView) {
	const ended = isTerminal(record.status);
	const origin = new URL(c.req.url).origin;
	return {
		id: record.id,
		type: "message_batch",
		processing_status: ended
			? "ended"
			: record.status === "cancelling"
				? "canceling"
				: "in_progress",
		request_counts: {
			processing: counts.pending,
			succeeded: counts.succeeded,
			errored: counts.failed,
			canceled: counts.cancelled,
			expired: counts.expired,
		},
		ended_at: iso(record.completedMs ?? record.cancelledMs ?? record.expiredMs),
		created_at: iso(record.createdMs),
		expires_at: iso(record.expiresMs),
		archived_at: null,
		cancel_initiated_at: iso(record.cancellingMs),
		results_url:
			ended && record.outputFileId
				? `${origin}/${record.pool}/v1/messages/batches/${record.id}/results`
				: null,
	};
}

const notFound = (id: string) => `No message batch with id ${id}.`;

anthropicBatches.post("/messages/batches", async (c) => {
	const body = await readJsonObject(c);
	const checked = checkAnthropicRequests(body.requests, batchInputLimits(c));
	if (!checked.ok) {
		const message = problemsMessage("The batch", checked.problems, "anthropic");
		throw new GatewayError(400, message, "bad_batch");
	}
	const view = await createBatch(
		c,
		"anthropic",
		{ endpoint: "/v1/messages", completionWindow: "24h", metadata: null },
		{ lines: checked.value },
		WINDOW_MS,
	);
	return c.json(batchObject(c, view));
});

anthropicBatches.get("/messages/batches", async (c) => {
	const limit = pageLimit(c.req.query("limit"), 20, 1000);
	const { views, hasMore } = await listBatches(c, c.req.query("after_id"), limit);
	const data = views.map((view) => batchObject(c, view));
	return c.json({
		data,
		has_more: hasMore,
		first_id: data[0]?.id ?? null,
		last_id: data.at(-1)?.id ?? null,
	});
});

anthropicBatches.get("/messages/batches/:id", async (c) => {
	const id = c.req.param("id");
	return c.json(batchObject(c, await ownedBatch(c, id, notFound(id))));
});

anthropicBatches.post("/messages/batches/:id/cancel", async (c) => {
	const id = c.req.param("id");
	await ownedBatch(c, id, notFound(id));
	return c.json(batchObject(c, await c.env.BATCH.getByName(id).cancel()));
});

anthropicBatches.get("/messages/batches/:id/results", async (c) => {
	const id = c.req.param("id");
	const { record } = await ownedBatch(c, id, notFound(id));
	if (!isTerminal(record.status) || !record.outputFileId) {
		throw new GatewayError(
			404,
			`Message batch ${id} has not ended yet (${record.status}); its results come when it has.`,
			"results_not_ready",
		);
	}
	const file = await findFile(c.env.BATCH_FILES, record.outputFileId, record.tenant, record.pool);
	if (!file) {
		throw new GatewayError(
			404,
			`The results of message batch ${id} have expired (they are kept 30 days).`,
			"results_expired",
		);
	}
	const text = (await readFileText(c.env.BATCH_FILES, file.id)) ?? "";
	return new Response(text, { headers: { "content-type": "application/binary" } });
});

anthropicBatches.delete("/messages/batches/:id", async (c) => {
	const id = c.req.param("id");
	const view = await ownedBatch(c, id, notFound(id));
	if (!isTerminal(view.record.status)) {
		throw new GatewayError(
			400,
			`Message batch ${id} is still processing: cancel it first, then delete it once it has ended.`,
			"batch_in_progress",
		);
	}
	if (view.record.outputFileId) await deleteFile(c.env.BATCH_FILES, view.record.outputFileId);
	await unlistBatch(c, view);
	await c.env.BATCH.getByName(id).remove();
	return c.json({ id, type: "message_batch_deleted" });
});
