// Calling the batch routes as a client would: uploads, batch creation, polling until a batch
// ends, and reading result files, through the Worker with a tenant's key.
import { exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import { TEST_KEYS } from "./test-config.ts";

export const chat = (n: number) => ({
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: `line ${n}` }],
	max_tokens: 8,
});
export const jsonl = (rows: unknown[]) => rows.map((row) => JSON.stringify(row)).join("\n");
export const lines = (count: number, url = "/v1/chat/completions") =>
	Array.from({ length: count }, (_, n) => ({
		custom_id: `req-${n}`,
		method: "POST",
		url,
		body: chat(n),
	}));

export function call(path: string, init: { method?: string; body?: unknown; key?: string } = {}) {
	const headers = new Headers({ authorization: `Bearer ${init.key ?? TEST_KEYS.teamA}` });
	let body: BodyInit | undefined;
	if (init.body instanceof FormData) body = init.body;
	else if (init.body !== undefined) {
		headers.set("content-type", "application/json");
		body = JSON.stringify(init.body);
	}
	return exports.default.fetch(
		new Request(`http://tollbooth.test${path}`, {
			method: init.method ?? (body ? "POST" : "GET"),
			headers,
			body,
		}),
	);
}

export function upload(
	pool: string,
	text: string,
	options: { purpose?: string; key?: string } = {},
) {
	const form = new FormData();
	form.set("purpose", options.purpose ?? "batch");
	form.set("file", new File([text], "input.jsonl"));
	return call(`/${pool}/v1/files`, { body: form, key: options.key });
}

/** Uploads `rows` (objects, or the file's raw text) and creates a batch of them: its object. */
export async function createBatch(
	pool: string,
	rows: unknown[] | string,
	extra: object = {},
	key?: string,
) {
	const text = typeof rows === "string" ? rows : jsonl(rows);
	const file = (await (await upload(pool, text, { key })).json()) as { id: string };
	const response = await call(`/${pool}/v1/batches`, {
		body: {
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
			...extra,
		},
		key,
	});
	expect(response.status).toBe(200);
	return (await response.json()) as BatchObject;
}

export interface BatchObject {
	id: string;
	status: string;
	output_file_id: string | null;
	error_file_id: string | null;
	request_counts: { total: number; completed: number; failed: number };
	errors: {
		object: string;
		data: { code: string; message: string; param: string | null; line: number | null }[];
	} | null;
}

export async function settled(
	pool: string,
	id: string,
	timeout = 15_000,
	key?: string,
): Promise<BatchObject> {
	let batch: BatchObject | undefined;
	await vi.waitFor(
		async () => {
			batch = (await (await call(`/${pool}/v1/batches/${id}`, { key })).json()) as BatchObject;
			expect(["completed", "cancelled", "expired", "failed"]).toContain(batch.status);
		},
		{ timeout, interval: 100 },
	);
	return batch as BatchObject;
}

export interface ResultLine {
	custom_id: string;
	response: unknown;
	error: { code: string; message: string } | null;
}

export async function fileLines(pool: string, id: string | null) {
	if (!id) return [];
	const bytes = await (await call(`/${pool}/v1/files/${id}/content`)).arrayBuffer();
	const text = new TextDecoder().decode(bytes);
	return text
		.trim()
		.split("\n")
		.map((row) => JSON.parse(row) as ResultLine);
}

export async function errorMessage(response: Response) {
	return ((await response.json()) as { error: { message: string } }).error.message;
}
