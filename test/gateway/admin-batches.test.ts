// Through the Worker: GET /admin/batches lists every tenant's batches newest first with status and
// counts, filtered by tenant, pool and status (kept current as batches end), paged by limit/after.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/gateway/admin-openapi.ts";
import { adminCall } from "../support/admin.ts";
import { call, createBatch, lines, settled } from "../support/batches.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

interface AdminBatch {
	id: string;
	api: string;
	tenant: string;
	pool: string;
	status: string;
	counts: { total: number; succeeded: number; pending: number };
	webhook: unknown;
}
interface Page {
	batches: AdminBatch[];
	hasMore: boolean;
	lastId: string | null;
}

async function list(query = ""): Promise<Page> {
	const response = await adminCall("GET", `/batches${query}`);
	expect(response.status).toBe(200);
	return (await response.json()) as Page;
}

const ids = (page: Page) => page.batches.map((batch) => batch.id);

describe("GET /admin/batches", () => {
	it("lists, filters and pages every tenant's batches, newest first", async () => {
		const first = await createBatch("openai", lines(2));
		const failed = await createBatch("openai", "not json");
		const teamB = await createBatch("openai", lines(1), {}, TEST_KEYS.teamB);
		const messages = await call("/anthropic/v1/messages/batches", {
			body: {
				requests: [
					{
						custom_id: "a",
						params: { model: "claude-haiku-4-5", max_tokens: 8, messages: [] },
					},
				],
			},
		});
		const anthropic = (await messages.json()) as { id: string };
		await settled("openai", first.id);

		const all = await list();
		expect(ids(all)).toEqual([anthropic.id, teamB.id, failed.id, first.id]);
		expect(all.hasMore).toBe(false);
		expect(all.batches[3]).toMatchObject({
			api: "openai",
			tenant: "team-a",
			pool: "openai",
			status: "completed",
			counts: { total: 2, succeeded: 2, pending: 0 },
			webhook: null,
		});

		expect(ids(await list("?tenant=team-b"))).toEqual([teamB.id]);
		expect(ids(await list("?pool=anthropic"))).toEqual([anthropic.id]);
		expect(ids(await list("?status=failed"))).toEqual([failed.id]);
		// The index follows a batch's status as it ends.
		expect(ids(await list("?tenant=team-a&pool=openai&status=completed"))).toEqual([first.id]);

		const page1 = await list("?limit=2");
		expect(ids(page1)).toEqual([anthropic.id, teamB.id]);
		expect(page1).toMatchObject({ hasMore: true, lastId: teamB.id });
		const page2 = await list(`?limit=2&after=${page1.lastId}`);
		expect(ids(page2)).toEqual([failed.id, first.id]);
		expect(page2.hasMore).toBe(false);
		const filteredPage = await list(`?tenant=team-a&limit=1&after=${anthropic.id}`);
		expect(ids(filteredPage)).toEqual([failed.id]);
		expect(filteredPage.hasMore).toBe(true);
	});

	it("needs the admin token, and names a bad query field", async () => {
		expect((await adminCall("GET", "/batches", undefined, TEST_KEYS.teamA)).status).toBe(401);
		for (const [query, param] of [
			["?limit=0", "query.limit"],
			["?limit=101", "query.limit"],
			["?status=done", "query.status"],
			["?after=batch_nope", "query.after"],
			[`?after=batch_${"0".repeat(32)}`, "query.after"],
			["?owner=x", "query"],
		] as const) {
			const response = await adminCall("GET", `/batches${query}`);
			expect(response.status, query).toBe(400);
			const { error } = (await response.json()) as { error: { param: string | null } };
			expect(error.param, query).toBe(param);
		}
	});

	it("is in the admin API's OpenAPI document, with its query and answer", () => {
		const doc = openApiDocument() as {
			paths: Record<string, { parameters: { name: string }[] }>;
			components: { schemas: Record<string, { properties: Record<string, unknown> }> };
		};
		const names = doc.paths["/admin/batches"]?.parameters.map((parameter) => parameter.name);
		expect(names).toEqual(["tenant", "pool", "status", "limit", "after"]);
		expect(Object.keys(doc.components.schemas.Batch?.properties ?? {})).toEqual(
			expect.arrayContaining(["id", "tenant", "pool", "status", "counts"]),
		);
	});
});
