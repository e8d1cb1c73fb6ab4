// Through the Worker: GET /v1/files lists a tenant's own files as OpenAI does (purpose, limit,
// after, order), and files expire: inputs by expires_after (else 30 days), outputs after 30 days;
// an expired file answers 404 and is deleted from R2.
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tenantWithKey } from "../support/admin.ts";
import { call, createBatch, jsonl, lines, settled } from "../support/batches.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => {
	vi.useRealTimers();
	upstream.restore();
});

interface FileObject {
	id: string;
	purpose: string;
	created_at: number;
	expires_at: number | null;
}
interface FileList {
	object: string;
	data: FileObject[];
	first_id: string | null;
	last_id: string | null;
	has_more: boolean;
}

const DAY_S = 24 * 3600;

function upload(fields: Record<string, string> = {}, key?: string) {
	const form = new FormData();
	form.set("purpose", "batch");
	form.set("file", new File([jsonl(lines(1))], "in.jsonl"));
	for (const [name, value] of Object.entries(fields)) form.set(name, value);
	return call("/openai/v1/files", { body: form, key });
}

async function uploaded(fields: Record<string, string> = {}, key?: string): Promise<FileObject> {
	const response = await upload(fields, key);
	expect(response.status).toBe(200);
	return (await response.json()) as FileObject;
}

async function listFiles(query = "", key?: string): Promise<FileList> {
	const response = await call(`/openai/v1/files${query}`, { key });
	expect(response.status).toBe(200);
	return (await response.json()) as FileList;
}

const ids = (list: FileList) => list.data.map((file) => file.id);

describe("GET /v1/files", () => {
	it("lists only the tenant's own files, by purpose, newest first or oldest first, paged", async () => {
		const a = await uploaded();
		const b = await uploaded();
		const theirs = await uploaded({}, TEST_KEYS.teamB);
		const done = await settled("openai", (await createBatch("openai", lines(2))).id);
		const output = done.output_file_id as string;
		const input = (await listFiles("?purpose=batch")).data.find(
			(file) => ![a.id, b.id].includes(file.id),
		);

		const all = await listFiles();
		expect(all.object).toBe("list");
		expect(ids(all)).toEqual([output, input?.id, b.id, a.id]);
		expect(ids(all)).not.toContain(theirs.id);
		expect(ids(await listFiles("", TEST_KEYS.teamB))).toEqual([theirs.id]);
		expect(ids(await listFiles("?purpose=batch_output"))).toEqual([output]);
		expect(ids(await listFiles("?order=asc"))).toEqual([a.id, b.id, input?.id, output]);

		const page1 = await listFiles("?limit=2&order=asc");
		expect(page1).toMatchObject({ first_id: a.id, last_id: b.id, has_more: true });
		const page2 = await listFiles(`?limit=2&order=asc&after=${page1.last_id}`);
		expect(ids(page2)).toEqual([input?.id, output]);
		expect(page2.has_more).toBe(false);
	});

	it("refuses a bad order or limit with the field named", async () => {
		for (const [query, param] of [
			["?order=sideways", "order"],
			["?limit=0", null],
		] as const) {
			const response = await call(`/openai/v1/files${query}`);
			expect(response.status).toBe(400);
			const { error } = (await response.json()) as { error: { type: string; param: unknown } };
			expect(error.type).toBe("invalid_request_error");
			if (param) expect(error.param).toBe(param);
		}
	});
});

describe("file expiry", () => {
	it("gives inputs 30 days by default, or expires_after, and batch outputs 30 days", async () => {
		const plain = await uploaded();
		expect(plain.expires_at).toBe(plain.created_at + 30 * DAY_S);
		const hour = await uploaded({
			"expires_after[anchor]": "created_at",
			"expires_after[seconds]": "3600",
		});
		expect(hour.expires_at).toBe(hour.created_at + 3600);
		const done = await settled("openai", (await createBatch("openai", lines(1))).id);
		const output = (await (
			await call(`/openai/v1/files/${done.output_file_id}`)
		).json()) as FileObject;
		expect(output.purpose).toBe("batch_output");
		expect(output.expires_at).toBe(output.created_at + 30 * DAY_S);
	});

	it("refuses an expires_after OpenAI would refuse", async () => {
		for (const [fields, param] of [
			[{ "expires_after[anchor]": "created_at", "expires_after[seconds]": "60" }, "seconds"],
			[{ "expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001" }, "seconds"],
			[{ "expires_after[anchor]": "last_used", "expires_after[seconds]": "3600" }, "anchor"],
			[{ "expires_after[seconds]": "3600" }, "anchor"],
		] as const) {
			const response = await upload(fields);
			expect(response.status).toBe(400);
			const { error } = (await response.json()) as { error: { param: string } };
			expect(error.param).toBe(`expires_after.${param}`);
		}
	});

	it("answers 404 for an expired file, leaves it out of listings, and deletes it from R2", async () => {
		// A tenant of its own: the other tests' files stay in this file's storage.
		const { key } = await tenantWithKey();
		const short = await uploaded(
			{ "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600" },
			key,
		);
		const kept = await uploaded({}, key);
		expect((await call(`/openai/v1/files/${short.id}`, { key })).status).toBe(200);
		// The Worker runs in this isolate: its clock moves past the hour.
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime((short.expires_at as number) * 1000 + 1000);
		expect(ids(await listFiles("", key))).toEqual([kept.id]);
		expect(await env.BATCH_FILES.head(`files/${short.id}`)).toBeNull();
		expect((await call(`/openai/v1/files/${short.id}`, { key })).status).toBe(404);
		expect((await call(`/openai/v1/files/${short.id}/content`, { key })).status).toBe(404);
		// A batch cannot be made from it either.
		const batch = await call("/openai/v1/batches", {
			key,
			body: {
				input_file_id: short.id,
				endpoint: "/v1/chat/completions",
				completion_window: "24h",
			},
		});
		expect(batch.status).toBe(404);
		expect((await call(`/openai/v1/files/${kept.id}`, { key })).status).toBe(200);
	});

	it("deletes an expired file when it is asked for, before any listing", async () => {
		const short = await uploaded({
			"expires_after[anchor]": "created_at",
			"expires_after[seconds]": "3600",
		});
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime((short.expires_at as number) * 1000 + 1000);
		expect((await call(`/openai/v1/files/${short.id}`)).status).toBe(404);
		expect(await env.BATCH_FILES.head(`files/${short.id}`)).toBeNull();
		const listing = await env.BATCH_FILES.list({ prefix: "file-index/" });
		expect(
			listing.objects.map((object) => object.key).filter((key) => key.endsWith(short.id)),
		).toEqual([]);
	});

	it("answers 404 in Anthropic's shape for a message batch's results past 30 days", async () => {
		const created = await call("/anthropic/v1/messages/batches", {
			body: {
				requests: [
					{
						custom_id: "a",
						params: { model: "claude-haiku-4-5", max_tokens: 8, messages: [] },
					},
				],
			},
		});
		const { id } = (await created.json()) as { id: string };
		await vi.waitFor(
			async () => {
				const batch = (await (await call(`/anthropic/v1/messages/batches/${id}`)).json()) as {
					processing_status: string;
				};
				expect(batch.processing_status).toBe("ended");
			},
			{ timeout: 10_000, interval: 100 },
		);
		expect((await call(`/anthropic/v1/messages/batches/${id}/results`)).status).toBe(200);
		vi.useFakeTimers({ toFake: ["Date"] });
		vi.setSystemTime(Date.now() + 31 * DAY_S * 1000);
		const expired = await call(`/anthropic/v1/messages/batches/${id}/results`);
		expect(expired.status).toBe(404);
		expect(await expired.json()).toMatchObject({
			type: "error",
			error: { type: "not_found_error", message: expect.stringContaining("have expired") },
		});
	});
});
