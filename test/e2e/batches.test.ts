// End to end: `wrangler dev` (local Queues and R2) driven by the official SDKs' batch APIs: a
// 500-line OpenAI batch from upload to output file, and an Anthropic message batch to its results.
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devConfig } from "../../bench/lib/dev-config.ts";
import { startWranglerDev, type WranglerDev } from "../../bench/lib/wrangler-dev.ts";
import { anthropicClient, openaiClient } from "./support/dev-gateway.ts";

/** The dev pools, at 3,000 requests a minute so 500 lines take seconds, and a mock that allows it. */
const RPM = 3000;

let gateway: WranglerDev;
beforeAll(async () => {
	const config = devConfig() as { pools: { limits: object }[] };
	gateway = await startWranglerDev({
		config: {
			...config,
			pools: config.pools.map((pool) => ({
				...pool,
				limits: { requestsPerMinute: RPM, tokensPerMinute: 10_000_000, maxConcurrent: 64 },
			})),
		},
		vars: { MOCK_RPM: RPM * 2, MOCK_TPM: 100_000_000 },
	});
});
afterAll(async () => {
	await gateway?.stop();
});

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await read();
		if (done(value)) return value;
		if (Date.now() > deadline)
			throw new Error(`not done after ${timeoutMs} ms: ${JSON.stringify(value)}`);
		await new Promise((wake) => setTimeout(wake, 500));
	}
}

describe("OpenAI SDK batches", () => {
	it("500 lines: upload, create, poll, list, download; every custom_id exactly once", async () => {
		const openai = openaiClient(gateway);
		const ids = Array.from({ length: 500 }, (_, n) => `line-${n}`);
		const jsonl = ids
			.map((custom_id, n) =>
				JSON.stringify({
					custom_id,
					method: "POST",
					url: "/v1/chat/completions",
					body: {
						model: "gpt-4o-mini",
						messages: [{ role: "user", content: `n=${n}` }],
						max_tokens: 8,
					},
				}),
			)
			.join("\n");
		const file = await openai.files.create({
			file: await toFile(Buffer.from(jsonl), "lines.jsonl"),
			purpose: "batch",
		});
		expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "lines.jsonl" });
		const batch = await openai.batches.create({
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
			metadata: { run: "e2e" },
		});
		expect(batch.request_counts?.total).toBe(500);
		const listed = await openai.batches.list({ limit: 10 });
		expect(listed.data.map((entry) => entry.id)).toContain(batch.id);

		const done = await until(
			() => openai.batches.retrieve(batch.id),
			(current) => current.status === "completed",
			50_000,
		);
		expect(done.request_counts).toEqual({ total: 500, completed: 500, failed: 0 });
		const output = await (await openai.files.content(done.output_file_id as string)).text();
		const seen = output
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line).custom_id as string);
		expect(seen.sort()).toEqual([...ids].sort());
		expect(new Set(seen).size).toBe(500);
	});

	it("cancel through the SDK ends the batch cancelled, every line once in output or error file", async () => {
		const openai = openaiClient(gateway);
		const ids = Array.from({ length: 300 }, (_, n) => `c-${n}`);
		const jsonl = ids
			.map((custom_id) =>
				JSON.stringify({
					custom_id,
					method: "POST",
					url: "/v1/chat/completions",
					body: {
						model: "gpt-4o-mini",
						messages: [{ role: "user", content: "hi" }],
						max_tokens: 8,
					},
				}),
			)
			.join("\n");
		const file = await openai.files.create({
			file: await toFile(Buffer.from(jsonl), "c.jsonl"),
			purpose: "batch",
		});
		const batch = await openai.batches.create({
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
		});
		expect((await openai.batches.cancel(batch.id)).status).toBe("cancelling");
		const done = await until(
			() => openai.batches.retrieve(batch.id),
			(current) => current.status === "cancelled",
			20_000,
		);
		const lines = async (id: string | null | undefined) =>
			id
				? (await (await openai.files.content(id)).text())
						.trim()
						.split("\n")
						.map((l) => JSON.parse(l))
				: [];
		const all = [...(await lines(done.output_file_id)), ...(await lines(done.error_file_id))];
		expect(all.map((line) => line.custom_id).sort()).toEqual([...ids].sort());
	});
	it("a file with bad lines gives a failed batch with errors by line; files.list and expiry", async () => {
		const openai = openaiClient(gateway);
		const good = JSON.stringify({
			custom_id: "ok",
			method: "POST",
			url: "/v1/chat/completions",
			body: { model: "gpt-4o-mini", messages: [], max_tokens: 8 },
		});
		const file = await openai.files.create({
			file: await toFile(Buffer.from(`${good}\n{not json\n${good}`), "bad.jsonl"),
			purpose: "batch",
			expires_after: { anchor: "created_at", seconds: 7200 },
		});
		expect(file.expires_at).toBe(file.created_at + 7200);
		const batch = await openai.batches.create({
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
		});
		expect(batch.status).toBe("failed");
		expect(batch.errors?.data?.map((error) => [error.line, error.code])).toEqual([
			[2, "invalid_json_line"],
			[3, "duplicate_custom_id"],
		]);
		const files = [];
		for await (const entry of openai.files.list({ purpose: "batch", order: "desc" })) {
			files.push(entry.id);
		}
		expect(files[0]).toBe(file.id);
	});
});

describe("Anthropic SDK message batches", () => {
	it("create, retrieve, list, results", async () => {
		const anthropic = anthropicClient(gateway);
		const requests = Array.from({ length: 50 }, (_, n) => ({
			custom_id: `m-${n}`,
			params: {
				model: "claude-haiku-4-5-20251001",
				max_tokens: 16,
				messages: [{ role: "user" as const, content: `n=${n}` }],
			},
		}));
		const batch = await anthropic.messages.batches.create({ requests });
		expect(batch.processing_status).toBe("in_progress");
		const ended = await until(
			() => anthropic.messages.batches.retrieve(batch.id),
			(current) => current.processing_status === "ended",
			30_000,
		);
		expect(ended.request_counts).toMatchObject({ succeeded: 50, errored: 0 });
		const page = await anthropic.messages.batches.list({ limit: 5 });
		expect(page.data.map((entry) => entry.id)).toContain(batch.id);
		const seen: string[] = [];
		for await (const result of await anthropic.messages.batches.results(batch.id)) {
			expect(result.result.type).toBe("succeeded");
			seen.push(result.custom_id);
		}
		expect(seen.sort()).toEqual(requests.map((request) => request.custom_id).sort());
	});
});
