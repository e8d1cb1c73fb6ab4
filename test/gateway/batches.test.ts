// Through the Worker: OpenAI files and batches and Anthropic message batches, run through the local
// queue against the mock provider: every validation error, upload limits, cancel, expiry, tenant
// isolation, and every line answered exactly once.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
	type BatchObject,
	call,
	chat,
	createBatch,
	errorMessage,
	fileLines,
	jsonl,
	lines,
	settled,
	upload,
} from "../support/batches.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

describe("OpenAI batches", () => {
	it("runs every line once and writes OpenAI's output file", async () => {
		const created = await createBatch("openai", lines(30), { metadata: { job: "nightly" } });
		expect(created).toMatchObject({
			object: "batch",
			status: "in_progress",
			endpoint: "/v1/chat/completions",
			metadata: { job: "nightly" },
			request_counts: { total: 30, completed: 0, failed: 0 },
		});
		const done = await settled("openai", created.id);
		expect(done).toMatchObject({
			status: "completed",
			request_counts: { total: 30, completed: 30, failed: 0 },
		});
		expect(done.error_file_id).toBeNull();
		const output = await fileLines("openai", done.output_file_id);
		expect(output.map((line) => line.custom_id).sort()).toEqual(
			lines(30)
				.map((line) => line.custom_id)
				.sort(),
		);
		expect(output[0]).toMatchObject({
			id: expect.stringMatching(/^batch_req_/),
			response: {
				status_code: 200,
				request_id: expect.any(String),
				body: { object: "chat.completion" },
			},
			error: null,
		});
		expect(upstream.sent).toHaveLength(30);
	});

	it("puts lines the provider refuses in the error file with its answer", async () => {
		upstream.restore();
		upstream = installMockUpstream({}, async (request) => {
			const body = (await request.clone().json()) as { messages: { content: string }[] };
			if (body.messages[0]?.content !== "line 1") return undefined;
			return Response.json(
				{ error: { message: "bad", type: "invalid_request_error" } },
				{ status: 400 },
			);
		});
		const done = await settled("openai", (await createBatch("openai", lines(3))).id);
		expect(done.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
		const errors = await fileLines("openai", done.error_file_id);
		expect(errors).toEqual([
			expect.objectContaining({
				custom_id: "req-1",
				response: expect.objectContaining({ status_code: 400 }),
				error: null,
			}),
		]);
	});

	it("fails a batch whose input file has bad lines, as OpenAI does, each error with its line", async () => {
		const rows = [
			"not json",
			JSON.stringify([1]),
			JSON.stringify({ method: "POST", url: "/v1/chat/completions", body: chat(0) }),
			JSON.stringify(lines(1)[0]),
			JSON.stringify(lines(1)[0]),
			JSON.stringify({ ...lines(1)[0], custom_id: "get", method: "GET" }),
			JSON.stringify({ ...lines(1)[0], custom_id: "where", url: "/v1/nowhere" }),
			JSON.stringify({ ...lines(1)[0], custom_id: "mixed", url: "/v1/embeddings" }),
			JSON.stringify({ ...lines(1)[0], custom_id: "nomodel", body: { messages: [] } }),
			JSON.stringify({ ...lines(1)[0], custom_id: "stream", body: { ...chat(0), stream: true } }),
		];
		const batch = await createBatch("openai", rows.join("\n"));
		expect(batch).toMatchObject({
			status: "failed",
			failed_at: expect.any(Number),
			request_counts: { total: 0, completed: 0, failed: 0 },
			output_file_id: null,
		});
		expect(batch.errors?.object).toBe("list");
		expect(batch.errors?.data).toEqual([
			{ line: 1, code: "invalid_json_line", param: null, message: "line 1: it is not valid JSON" },
			{
				line: 2,
				code: "invalid_json_line",
				param: null,
				message: "line 2: it is not a JSON object",
			},
			{
				line: 3,
				code: "missing_required_parameter",
				param: "custom_id",
				message: "line 3: custom_id is missing",
			},
			{
				line: 5,
				code: "duplicate_custom_id",
				param: "custom_id",
				message: 'line 5: custom_id "req-0" is already used on line 4',
			},
			{ line: 6, code: "invalid_value", param: "method", message: 'line 6: method must be "POST"' },
			expect.objectContaining({ line: 7, code: "invalid_url", param: "url" }),
			{
				line: 8,
				code: "mismatched_url",
				param: "url",
				message:
					"line 8: url /v1/embeddings differs from the file's first url /v1/chat/completions",
			},
			{
				line: 9,
				code: "missing_required_parameter",
				param: "body.model",
				message: "line 9: its body has no model",
			},
			expect.objectContaining({ line: 10, code: "invalid_value", param: "body.stream" }),
		]);
		// Nothing was sent, and the failed batch is listed like any other.
		expect(upstream.sent).toHaveLength(0);
		const listed = (await (await call("/openai/v1/batches")).json()) as { data: BatchObject[] };
		expect(listed.data.find((entry) => entry.id === batch.id)?.status).toBe("failed");
	});

	it("refuses uploads that are not batch files, or too large", async () => {
		const wrongPurpose = await upload("openai", jsonl(lines(1)), { purpose: "fine-tune" });
		expect(wrongPurpose.status).toBe(400);
		expect(await errorMessage(wrongPurpose)).toContain('purpose must be "batch"');
		const empty = await upload("openai", "\n");
		expect(empty.status).toBe(400);
		expect(await errorMessage(empty)).toBe('File "input.jsonl" is empty.');
		// The test configuration accepts bodies up to 64 KB.
		const tooLarge = await upload("openai", jsonl(lines(1000)));
		expect(tooLarge.status).toBe(413);
		const notMultipart = await call("/openai/v1/files", { body: { file: "x" } });
		expect(notMultipart.status).toBe(400);
	});

	it("refuses a malformed batch request with 400; a file for another endpoint fails the batch", async () => {
		const file = (await (await upload("openai", jsonl(lines(2)))).json()) as { id: string };
		const create = (body: object) =>
			call("/openai/v1/batches", {
				body: {
					input_file_id: file.id,
					endpoint: "/v1/chat/completions",
					completion_window: "24h",
					...body,
				},
			});
		const otherEndpoint = (await (
			await create({ endpoint: "/v1/embeddings" })
		).json()) as BatchObject;
		expect(otherEndpoint.status).toBe("failed");
		expect(otherEndpoint.errors?.data[0]).toEqual({
			line: 1,
			code: "mismatched_endpoint",
			param: "url",
			message: "line 1: url /v1/chat/completions is not the batch's endpoint /v1/embeddings",
		});
		expect(otherEndpoint.errors?.data).toHaveLength(2);
		const expectError = async (response: Response, status: number, param: string | null) => {
			expect(response.status).toBe(status);
			const { error } = (await response.json()) as { error: { type: string; param: unknown } };
			expect(error.type).toBe("invalid_request_error");
			expect(error.param).toBe(param);
		};
		await expectError(await create({ endpoint: "/v1/images" }), 400, "endpoint");
		await expectError(await create({ completion_window: "tomorrow" }), 400, "completion_window");
		await expectError(await create({ metadata: { n: 1 } }), 400, "metadata");
		await expectError(await create({ input_file_id: undefined }), 400, "input_file_id");
		await expectError(await create({ input_file_id: "file-nope" }), 404, null);
		const notAnObject = await call("/openai/v1/batches", { body: ["not", "an", "object"] });
		expect(notAnObject.status).toBe(400);
		expect(await errorMessage(notAnObject)).toBe("The request body must be a JSON object.");
	});

	it("shows a tenant only its own files and batches", async () => {
		const batch = await createBatch("openai", lines(1));
		const file = (await (await upload("openai", jsonl(lines(1)))).json()) as { id: string };
		const teamB = { key: TEST_KEYS.teamB };
		expect((await call(`/openai/v1/batches/${batch.id}`, teamB)).status).toBe(404);
		expect(
			(await call(`/openai/v1/batches/${batch.id}/cancel`, { ...teamB, method: "POST" })).status,
		).toBe(404);
		expect((await call(`/openai/v1/files/${file.id}`, teamB)).status).toBe(404);
		expect((await call(`/openai/v1/files/${file.id}/content`, teamB)).status).toBe(404);
		expect((await call(`/openai/v1/files/${file.id}`, { ...teamB, method: "DELETE" })).status).toBe(
			404,
		);
		const theirs = (await (await call("/openai/v1/batches", teamB)).json()) as { data: unknown[] };
		expect(theirs.data).toEqual([]);
		const ours = (await (await call("/openai/v1/batches?limit=1")).json()) as {
			data: { id: string }[];
			has_more: boolean;
		};
		expect(ours.data.map((entry) => entry.id)).toEqual([batch.id]);
		// A file the owner deletes is gone for the owner too.
		expect((await call(`/openai/v1/files/${file.id}`, { method: "DELETE" })).status).toBe(200);
		expect((await call(`/openai/v1/files/${file.id}`)).status).toBe(404);
	});

	it("cancels: no new line is sent, finished ones are kept, the rest are batch_cancelled", async () => {
		// "tight" admits background lines about one a second.
		const created = await createBatch("tight", lines(20));
		await vi.waitFor(() => expect(upstream.sent.length).toBeGreaterThan(0), { timeout: 10_000 });
		const cancelling = (await (
			await call(`/tight/v1/batches/${created.id}/cancel`, { method: "POST" })
		).json()) as BatchObject;
		expect(cancelling.status).toBe("cancelling");
		const sentAtCancel = upstream.sent.length;
		const done = await settled("tight", created.id);
		expect(done.status).toBe("cancelled");
		// Lines already admitted may finish within the grace; nothing new starts.
		expect(upstream.sent.length).toBeLessThanOrEqual(sentAtCancel + 1);
		const output = await fileLines("tight", done.output_file_id);
		const errors = await fileLines("tight", done.error_file_id);
		expect(output.length).toBeGreaterThan(0);
		expect(errors.every((line) => line.error?.code === "batch_cancelled")).toBe(true);
		expect([...output, ...errors].map((line) => line.custom_id).sort()).toEqual(
			lines(20)
				.map((line) => line.custom_id)
				.sort(),
		);
	});

	it("expires: lines not run inside the completion window are batch_expired", async () => {
		const created = await createBatch("tight-deadline", lines(20), { completion_window: "3s" });
		const done = await settled("tight-deadline", created.id);
		expect(done.status).toBe("expired");
		const output = await fileLines("tight-deadline", done.output_file_id);
		const errors = await fileLines("tight-deadline", done.error_file_id);
		expect(errors.length).toBeGreaterThan(0);
		expect(errors.every((line) => line.error?.code === "batch_expired")).toBe(true);
		expect(output.length + errors.length).toBe(20);
		expect(done.request_counts.failed).toBe(errors.length);
	});
});

describe("Anthropic message batches", () => {
	const message = (n: number) => ({
		model: "claude-sonnet-4-5",
		max_tokens: 16,
		messages: [{ role: "user", content: `request ${n}` }],
	});

	it("creates, ends, serves results as JSONL, and deletes", async () => {
		const requests = Array.from({ length: 5 }, (_, n) => ({
			custom_id: `r${n}`,
			params: message(n),
		}));
		const created = await call("/anthropic/v1/messages/batches", { body: { requests } });
		expect(created.status).toBe(200);
		const batch = (await created.json()) as { id: string; processing_status: string };
		expect(batch).toMatchObject({ type: "message_batch", processing_status: "in_progress" });
		let ended = { processing_status: "", request_counts: {}, results_url: "" };
		await vi.waitFor(
			async () => {
				ended = (await (
					await call(`/anthropic/v1/messages/batches/${batch.id}`)
				).json()) as typeof ended;
				expect(ended.processing_status).toBe("ended");
			},
			{ timeout: 10_000, interval: 100 },
		);
		expect(ended.request_counts).toEqual({
			processing: 0,
			succeeded: 5,
			errored: 0,
			canceled: 0,
			expired: 0,
		});
		expect(ended.results_url).toBe(
			`http://tollbooth.test/anthropic/v1/messages/batches/${batch.id}/results`,
		);
		const resultsBody = await (await call(new URL(ended.results_url).pathname)).arrayBuffer();
		const results = new TextDecoder()
			.decode(resultsBody)
			.trim()
			.split("\n")
			.map((row) => JSON.parse(row));
		expect(results.map((row) => row.custom_id).sort()).toEqual(["r0", "r1", "r2", "r3", "r4"]);
		expect(results[0].result).toMatchObject({ type: "succeeded", message: { type: "message" } });
		const deleted = await call(`/anthropic/v1/messages/batches/${batch.id}`, { method: "DELETE" });
		expect(await deleted.json()).toEqual({ id: batch.id, type: "message_batch_deleted" });
		expect((await call(`/anthropic/v1/messages/batches/${batch.id}`)).status).toBe(404);
	});

	it("refuses bad requests in Anthropic's error shape with their index", async () => {
		const response = await call("/anthropic/v1/messages/batches", {
			body: {
				requests: [
					{ custom_id: "ok", params: message(0) },
					{ custom_id: "ok", params: message(1) },
					{ custom_id: "bad id!", params: message(2) },
					{ custom_id: "nomax", params: { ...message(3), max_tokens: undefined } },
				],
			},
		});
		expect(response.status).toBe(400);
		const body = (await response.json()) as {
			type: string;
			error: { type: string; message: string };
		};
		expect(body.type).toBe("error");
		expect(body.error.type).toBe("invalid_request_error");
		expect(body.error.message).toContain(
			'requests[1]: custom_id "ok" is already used by requests[0]',
		);
		expect(body.error.message).toContain("requests[2]: custom_id must be");
		expect(body.error.message).toContain("requests[3]: params.max_tokens is missing");
	});

	it("serves message batches only to a tenant of an Anthropic pool", async () => {
		const requests = [{ custom_id: "a", params: message(0) }];
		const created = (await (
			await call("/anthropic/v1/messages/batches", { body: { requests } })
		).json()) as {
			id: string;
		};
		expect((await call("/anthropic/v1/batches")).status).toBe(404);
		// team-b may not use the anthropic pool at all; the openai pool does not serve message batches.
		expect((await call(`/openai/v1/messages/batches/${created.id}`)).status).toBe(404);
		expect(
			(await call(`/anthropic/v1/messages/batches/${created.id}`, { key: TEST_KEYS.teamB })).status,
		).toBe(403);
	});
});
