// OpenAI's Files and Batch APIs under an OpenAI pool: /<pool>/v1/files and /<pool>/v1/batches, in
// OpenAI's object shapes, so openai.files.* and openai.batches.* work with only the base URL changed.
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { type BatchView, completionWindowMs } from "../durable/batch.ts";
import {
	deleteFile,
	findFile,
	listFiles,
	newId,
	putFile,
	readFileText,
	type StoredFile,
} from "../durable/batch-files.ts";
import {
	checkOpenAiBatchFile,
	endpointProblems,
	OPENAI_BATCH_ENDPOINTS,
	openAiBatchErrors,
} from "../providers/batch-input.ts";
import { isRecord } from "../providers/estimate.ts";
import {
	batchInputLimits,
	createBatch,
	listBatches,
	ownedBatch,
	pageLimit,
	readJsonObject,
} from "./batch-store.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";
import { readBody } from "./request-body.ts";

export const openaiBatches = new Hono<GatewayEnv>();

// Only on these routes: a sub-app's "*" would run for every /<pool>/v1 path, the proxy's too.
for (const path of ["/files", "/files/*", "/batches", "/batches/*"]) {
	openaiBatches.use(path, openAiPoolsOnly);
}

async function openAiPoolsOnly(c: Context<GatewayEnv>, next: () => Promise<void>) {
	if (c.get("pool").provider === "anthropic") {
		throw new GatewayError(
			404,
			`Pool "${c.get("pool").name}" is an Anthropic pool: use /${c.get("pool").name}/v1/messages/batches.`,
			"unknown_route",
		);
	}
	await next();
}

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

function fileObject(file: StoredFile) {
	return {
		id: file.id,
		object: "file",
		bytes: file.bytes,
		created_at: seconds(file.createdMs),
		filename: file.filename,
		purpose: file.purpose,
		status: "processed",
		expires_at: seconds(file.expiresMs),
		status_details: null,
	};
}

/**
 * A batch in OpenAI's shape: `failed` counts failed and expired lines, as OpenAI's does; a batch
 * whose input was refused has status `failed` and its problems, by line, in `errors`.
 */
export function batchObject({ record, counts }: BatchView) {
	return {
		id: record.id,
		object: "batch",
		endpoint: record.endpoint,
		errors: record.errors ? { object: "list", data: record.errors } : null,
		input_file_id: record.inputFileId,
		completion_window: record.completionWindow,
		status: record.status,
		output_file_id: record.outputFileId ?? null,
		error_file_id: record.errorFileId ?? null,
		created_at: seconds(record.createdMs),
		in_progress_at: seconds(record.inProgressMs),
		expires_at: seconds(record.expiresMs),
		finalizing_at: seconds(record.finalizingMs),
		completed_at: seconds(record.completedMs),
		failed_at: seconds(record.failedMs),
		expired_at: seconds(record.expiredMs),
		cancelling_at: seconds(record.cancellingMs),
		cancelled_at: seconds(record.cancelledMs),
		request_counts: {
			total: counts.total,
			completed: counts.succeeded,
			failed: counts.failed + counts.expired,
		},
		metadata: record.metadata,
	};
}

async function ownedFile(c: Context<GatewayEnv>, id: string): Promise<StoredFile> {
	const file = await findFile(c.env.BATCH_FILES, id, c.get("tenant").name, c.get("pool").name);
	if (!file) throw new GatewayError(404, `No such File object: ${id}`, "file_not_found");
	return file;
}

/** A 400 whose OpenAI error names the request field at fault in `param`. */
const badRequest = (message: string, reason: string, param: string | null = null) =>
	new GatewayError(400, message, reason, { details: { param } });

openaiBatches.post("/files", async (c) => {
	const raw = await readBody(c.req.raw, c.get("config").maxBodyBytes);
	const contentType = c.req.header("content-type") ?? "";
	if (!raw || !contentType.includes("multipart/form-data")) {
		throw badRequest(
			"Upload the file as multipart/form-data with fields 'file' and 'purpose'.",
			"bad_upload",
		);
	}
	const form = await new Request(c.req.url, {
		method: "POST",
		headers: { "content-type": contentType },
		body: raw,
	}).formData();
	const purpose = form.get("purpose");
	if (purpose !== "batch") {
		throw badRequest(
			`purpose must be "batch" (got ${JSON.stringify(purpose)}); tollbooth stores batch input files only.`,
			"bad_purpose",
		);
	}
	const file = form.get("file");
	if (!file || typeof file === "string")
		throw badRequest("The upload has no 'file' field.", "bad_upload");
	// Its lines are checked when a batch is created from it, as OpenAI does: bad lines fail the batch.
	const text = await file.text();
	if (text.trim() === "") throw badRequest(`File "${file.name}" is empty.`, "empty_file");
	const createdMs = Date.now();
	const stored = await putFile(
		c.env.BATCH_FILES,
		{
			id: newId("file-"),
			tenant: c.get("tenant").name,
			pool: c.get("pool").name,
			purpose: "batch",
			filename: file.name,
			createdMs,
			expiresMs: createdMs + inputFileTtlMs(form),
		},
		text,
	);
	return c.json(fileObject(stored));
});

/** OpenAI's bounds of `expires_after.seconds`, and its default for purpose=batch files. */
const EXPIRES_AFTER_SECONDS = { min: 3600, max: 2_592_000 };

/** An input file's lifetime: OpenAI's `expires_after` form fields if given, else 30 days. */
function inputFileTtlMs(form: FormData): number {
	const anchor = form.get("expires_after[anchor]");
	const raw = form.get("expires_after[seconds]");
	if (anchor === null && raw === null) return EXPIRES_AFTER_SECONDS.max * 1000;
	if (anchor !== "created_at") {
		throw badRequest(
			'expires_after.anchor must be "created_at".',
			"bad_expires_after",
			"expires_after.anchor",
		);
	}
	const seconds = Number(raw);
	const { min, max } = EXPIRES_AFTER_SECONDS;
	if (typeof raw !== "string" || !Number.isInteger(seconds) || seconds < min || seconds > max) {
		throw badRequest(
			`expires_after.seconds must be a whole number from ${min} (1 hour) to ${max} (30 days).`,
			"bad_expires_after",
			"expires_after.seconds",
		);
	}
	return seconds * 1000;
}

openaiBatches.get("/files", async (c) => {
	const order = c.req.query("order") ?? "desc";
	if (order !== "asc" && order !== "desc") {
		throw badRequest('order must be "asc" or "desc".', "bad_order", "order");
	}
	const limit = pageLimit(c.req.query("limit"), 10_000, 10_000);
	const { files, hasMore } = await listFiles(
		c.env.BATCH_FILES,
		{ tenant: c.get("tenant").name, pool: c.get("pool").name },
		{ purpose: c.req.query("purpose"), after: c.req.query("after"), limit, order },
	);
	return c.json(listPage(files.map(fileObject), hasMore));
});

openaiBatches.get("/files/:id", async (c) =>
	c.json(fileObject(await ownedFile(c, c.req.param("id")))),
);

openaiBatches.get("/files/:id/content", async (c) => {
	const file = await ownedFile(c, c.req.param("id"));
	const text = (await readFileText(c.env.BATCH_FILES, file.id)) ?? "";
	return new Response(text, { headers: { "content-type": "application/octet-stream" } });
});

openaiBatches.delete("/files/:id", async (c) => {
	const file = await ownedFile(c, c.req.param("id"));
	await deleteFile(c.env.BATCH_FILES, file.id);
	return c.json({ id: file.id, object: "file", deleted: true });
});

openaiBatches.post("/batches", async (c) => {
	const body = await readJsonObject(c);

	const { input_file_id: inputFileId, endpoint, completion_window: window, metadata } = body;
	if (typeof endpoint !== "string" || !OPENAI_BATCH_ENDPOINTS.includes(endpoint)) {
		throw badRequest(
			`endpoint must be one of ${OPENAI_BATCH_ENDPOINTS.join(", ")}.`,
			"bad_endpoint",
			"endpoint",
		);
	}
	const windowMs = typeof window === "string" ? completionWindowMs(window) : undefined;
	if (windowMs === undefined) {
		throw badRequest(
			'completion_window must be a duration such as "24h".',
			"bad_completion_window",
			"completion_window",
		);
	}
	if (metadata !== undefined && metadata !== null && !isStringRecord(metadata)) {
		throw badRequest("metadata must map strings to strings.", "bad_metadata", "metadata");
	}
	if (typeof inputFileId !== "string")
		throw badRequest("input_file_id is missing.", "bad_input_file", "input_file_id");
	const file = await ownedFile(c, inputFileId);
	if (file.purpose !== "batch")
		throw badRequest(
			`File ${file.id} is not a batch input file.`,
			"bad_input_file",
			"input_file_id",
		);
	const checked = checkOpenAiBatchFile(
		(await readFileText(c.env.BATCH_FILES, file.id)) ?? "",
		batchInputLimits(c),
	);
	const problems = checked.ok ? endpointProblems(checked.value, endpoint) : checked.problems;
	const view = await createBatch(
		c,
		"openai",
		{ endpoint, inputFileId, completionWindow: window as string, metadata: metadata ?? null },
		checked.ok && problems.length === 0
			? { lines: checked.value }
			: { errors: openAiBatchErrors(problems) },
		windowMs,
	);
	return c.json(batchObject(view));
});

/** One page of an OpenAI list, as the SDKs page through it. */
function listPage<T extends { id: string }>(data: T[], hasMore: boolean) {
	return {
		object: "list" as const,
		data,
		first_id: data[0]?.id ?? null,
		last_id: data.at(-1)?.id ?? null,
		has_more: hasMore,
	};
}

const notFound = (id: string) => `No batch found with id '${id}'.`;

openaiBatches.get("/batches", async (c) => {
	const limit = pageLimit(c.req.query("limit"), 20, 100);
	const { views, hasMore } = await listBatches(c, c.req.query("after"), limit);
	return c.json(listPage(views.map(batchObject), hasMore));
});

openaiBatches.get("/batches/:id", async (c) => {
	const id = c.req.param("id");
	return c.json(batchObject(await ownedBatch(c, id, notFound(id))));
});

openaiBatches.post("/batches/:id/cancel", async (c) => {
	const id = c.req.param("id");
	await ownedBatch(c, id, notFound(id));
	return c.json(batchObject(await c.env.BATCH.getByName(id).cancel()));
});

function isStringRecord(value: unknown): value is Record<string, string> {
	return isRecord(value) && Object.values(value).every((entry) => typeof entry === "string");
}
