// Through the Worker: runtime tenants and keys over the admin API — a key works as soon as it is
// issued, stops at revocation (everywhere within KEY_CACHE_MS) and at expiry; every bad input gets
// a 4xx naming its field; the OpenAPI document comes from the same schemas.
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REGISTRY_NAME } from "../../src/durable/registry.ts";
import { KEY_CACHE_MS } from "../../src/gateway/tenant-keys.ts";
import { adminCall, tenantWithKey } from "../support/admin.ts";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream>;
beforeEach(() => {
	upstream = installMockUpstream();
});
afterEach(() => upstream.restore());

interface AdminError {
	error: { message: string; type: string; param: string | null; code: string };
}

async function expectError(response: Response, status: number, code: string, param?: string) {
	expect(response.status).toBe(status);
	const body = (await response.json()) as AdminError;
	expect(body.error.code).toBe(code);
	if (param !== undefined) expect(body.error.param).toBe(param);
	return body.error;
}

describe("tenants", () => {
	it("creates, reads, lists, changes and deletes a runtime tenant", async () => {
		const created = await adminCall("POST", "/tenants", {
			name: "acme",
			pools: ["openai"],
			maxPriority: "high",
			budget: { tokensPerDay: 2_000_000, downgrade: { "gpt-4o": "gpt-4o-mini" } },
		});
		expect(created.status).toBe(201);
		const tenant = (await created.json()) as Record<string, unknown>;
		expect(tenant).toMatchObject({ name: "acme", source: "runtime", weight: 1 });
		expect(tenant.budget).toMatchObject({ tokensPerDay: 2_000_000, downgradeAt: 0.9 });

		const patched = await adminCall("PATCH", "/tenants/acme", { weight: 3 });
		expect(patched.status).toBe(200);
		expect(await patched.json()).toMatchObject({ weight: 3, pools: ["openai"] });

		const list = (await (await adminCall("GET", "/tenants")).json()) as {
			tenants: { name: string; source: string }[];
		};
		expect(list.tenants.map((t) => `${t.source}:${t.name}`)).toEqual(
			expect.arrayContaining(["config:team-a", "config:team-b", "runtime:acme"]),
		);
		// A configured tenant is shown without its key hashes.
		expect(JSON.stringify(list)).not.toContain("keySha256");

		expect((await adminCall("DELETE", "/tenants/acme")).status).toBe(204);
		await expectError(await adminCall("GET", "/tenants/acme"), 404, "unknown_tenant", "tenant");
	});

	it("refuses every bad body with the field at fault", async () => {
		const cases: [unknown, string, number, string][] = [
			[{ name: "x", pools: "openai" }, "pools", 400, "invalid_body"],
			[{ name: "x", pools: ["*"], weight: "2" }, "weight", 400, "invalid_body"],
			[{ name: "x", pools: ["*"], colour: "red" }, "", 400, "invalid_body"],
			[
				{ name: "x", pools: ["*"], budget: { tokensPerDay: -5 } },
				"budget.tokensPerDay",
				400,
				"invalid_body",
			],
			[
				{ name: "x", pools: ["*"], budget: { timeZone: "Mars/Olympus" } },
				"budget.timeZone",
				400,
				"invalid_body",
			],
			[
				{ name: "x", pools: ["*"], budget: { downgradeAt: 1.5 } },
				"budget.downgradeAt",
				400,
				"invalid_body",
			],
			[{ name: "Bad Name", pools: ["*"] }, "name", 400, "invalid_body"],
			[{ pools: ["*"] }, "name", 400, "invalid_body"],
			[{ name: "x", pools: ["nope"] }, "pools.0", 400, "invalid_body"],
			[
				{ name: "x", pools: ["*"], defaultPriority: "critical", maxPriority: "low" },
				"defaultPriority",
				400,
				"invalid_body",
			],
			[{ name: "team-a", pools: ["*"] }, "name", 409, "name_taken"],
		];
		for (const [body, param, status, code] of cases) {
			const error = await expectError(await adminCall("POST", "/tenants", body), status, code);
			if (param) expect(error.param, JSON.stringify(body)).toBe(param);
			else expect(error.message).toContain('unknown key "colour"');
		}
		await expectError(await adminCall("POST", "/tenants", "{not json"), 400, "invalid_json");
		await expectError(
			await adminCall("POST", "/tenants", "x".repeat(70_000)),
			413,
			"request_too_large",
		);

		const { name } = await tenantWithKey();
		await expectError(
			await adminCall("POST", "/tenants", { name, pools: ["*"] }),
			409,
			"name_taken",
			"name",
		);
		await expectError(
			await adminCall("PATCH", `/tenants/${name}`, { name: "other" }),
			400,
			"invalid_body",
			"name",
		);
		await expectError(
			await adminCall("PATCH", `/tenants/${name}`, { budget: { costPerDayUsd: "ten" } }),
			400,
			"invalid_body",
			"budget.costPerDayUsd",
		);
		await expectError(
			await adminCall("PATCH", "/tenants/nobody", { weight: 2 }),
			404,
			"unknown_tenant",
			"tenant",
		);
		await expectError(
			await adminCall("PATCH", "/tenants/team-a", { weight: 2 }),
			409,
			"configured_tenant",
		);
		await expectError(
			await adminCall("POST", `/tenants/${name}/keys`, { expiresAt: "tomorrow" }),
			400,
			"invalid_body",
			"expiresAt",
		);
		await expectError(
			await adminCall("POST", `/tenants/${name}/keys`, { expiresAt: "2001-01-01T00:00:00Z" }),
			400,
			"invalid_body",
			"expiresAt",
		);
		await expectError(
			await adminCall("DELETE", `/tenants/${name}/keys/key_nope`),
			404,
			"unknown_key_id",
			"id",
		);
		await expectError(
			await adminCall("GET", `/tenants/${name}/usage?from=2026-13&to=2026-12-01`),
			400,
			"invalid_body",
			"query.from",
		);
		await expectError(
			await adminCall("GET", `/tenants/${name}/usage?from=2026-12-01`),
			400,
			"invalid_body",
			"query.to",
		);
	});

	it("answers only an admin token", async () => {
		expect((await adminCall("GET", "/tenants", undefined, TEST_KEYS.teamA)).status).toBe(401);
		expect((await adminCall("POST", "/tenants", { name: "x", pools: ["*"] }, "nope")).status).toBe(
			401,
		);
	});
});

describe("keys", () => {
	it("a key works once issued, is listed by prefix only, and stops at once when revoked here", async () => {
		const { name, key, keyId } = await tenantWithKey();
		expect(key).toMatch(/^tb_live_[0-9a-f]{48}$/);
		const answer = await postToPool("openai", { key });
		expect(answer.status).toBe(200);
		await answer.text();

		const listed = (await (await adminCall("GET", `/tenants/${name}/keys`)).json()) as {
			keys: { id: string; prefix: string; lastUsedAt: string | null }[];
		};
		expect(listed.keys).toHaveLength(1);
		expect(listed.keys[0]).toMatchObject({ id: keyId, prefix: `${key.slice(0, 12)}…` });
		expect(listed.keys[0]?.lastUsedAt).not.toBeNull();
		expect(JSON.stringify(listed)).not.toContain(key);

		expect((await adminCall("DELETE", `/tenants/${name}/keys/${keyId}`)).status).toBe(204);
		expect((await postToPool("openai", { key })).status).toBe(401);
	});

	it("a key revoked from another isolate stops working within KEY_CACHE_MS", async () => {
		const { name, key, keyId } = await tenantWithKey();
		expect((await postToPool("openai", { key })).status).toBe(200);
		// As another isolate would: straight in the registry, so this isolate's cache still holds it.
		const revokedMs = Date.now();
		await env.REGISTRY.getByName(REGISTRY_NAME).revokeKey(name, keyId);
		let status = 200;
		while (status === 200) {
			status = (await postToPool("openai", { key })).status;
			if (status === 200) await new Promise((resolve) => setTimeout(resolve, 100));
		}
		expect(status).toBe(401);
		expect(Date.now() - revokedMs).toBeLessThanOrEqual(KEY_CACHE_MS + 1000);
		expect(KEY_CACHE_MS).toBeLessThanOrEqual(5000);
	});

	it("an expired key stops working at its expiry", async () => {
		const { name } = await tenantWithKey();
		const expiresAt = new Date(Date.now() + 1500).toISOString();
		const issued = (await (
			await adminCall("POST", `/tenants/${name}/keys`, { expiresAt })
		).json()) as {
			key: string;
			expiresAt: string;
		};
		expect(issued.expiresAt).toBe(expiresAt);
		expect((await postToPool("openai", { key: issued.key })).status).toBe(200);
		await new Promise((resolve) => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 50));
		expect((await postToPool("openai", { key: issued.key })).status).toBe(401);
	});

	it("a runtime tenant is held to its pools", async () => {
		const { key } = await tenantWithKey({ pools: ["anthropic"] });
		expect((await postToPool("openai", { key })).status).toBe(403);
	});
});
