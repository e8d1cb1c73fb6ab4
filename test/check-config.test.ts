// `npm run check-config`'s checks as functions: every configuration that parses but would fail or be
// unsafe once deployed gets a named warning, and a bad one a message that says what to write.
import { describe, expect, it } from "vitest";
import { configWarnings, DEV_KEY_SHA256 } from "../scripts/config-warnings.ts";
import { type Config, parseConfig } from "../src/config.ts";
import { OPENAI_POOL } from "./support/config-pool.ts";

const hash = "a1".repeat(32);
const adminHash = "b2".repeat(32);
const pool = OPENAI_POOL;
const tenant = { name: "team", keySha256: [hash], pools: ["*"] };

function parsed(raw: object): Config {
	const result = parseConfig(raw);
	if (!result.ok) throw new Error(result.message);
	return result.config;
}

function messageOf(raw: object): string {
	const result = parseConfig(raw);
	return result.ok ? "" : result.message;
}

const good = { pools: [pool], tenants: [tenant], adminKeySha256: [adminHash] };
const production = { target: "production" as const, vars: {} };
const dev = { target: "dev" as const, vars: { OPENAI_API_KEY: "sk-local" } };

describe("warnings", () => {
	it("none for local dev with the secret in .dev.vars and an admin key", () => {
		expect(configWarnings(parsed(good), dev)).toEqual([]);
	});

	it("production: names each secret that must exist, with its wrangler secret put line", () => {
		const warnings = configWarnings(parsed(good), production);
		expect(warnings).toEqual([
			{
				path: "pools.0.apiKeySecret",
				message: expect.stringContaining("npx wrangler secret put OPENAI_API_KEY --env=''"),
			},
		]);
	});

	it("dev: a secret .dev.vars does not set", () => {
		const [warning] = configWarnings(parsed(good), { target: "dev", vars: {} });
		expect(warning?.path).toBe("pools.0.apiKeySecret");
		expect(warning?.message).toContain('add OPENAI_API_KEY="..." to .dev.vars');
	});

	it("production: a provider key given as a plain var in wrangler.toml", () => {
		const [warning] = configWarnings(parsed(good), {
			target: "production",
			vars: { OPENAI_API_KEY: "sk-in-the-file" },
		});
		expect(warning?.message).toContain("a plain var in wrangler.toml");
		expect(warning?.message).not.toContain("sk-in-the-file");
	});

	it("a baseUrl without its version path, with the root it probably means", () => {
		const config = parsed({
			...good,
			pools: [
				{ ...pool, baseUrl: "https://api.openai.com" },
				{ ...pool, name: "claude", provider: "anthropic", baseUrl: "https://api.anthropic.com/" },
				{ ...pool, name: "gemini", baseUrl: "https://example.com/v1beta/openai/" },
			],
		});
		const warnings = configWarnings(config, dev).filter((w) => w.path.endsWith("baseUrl"));
		expect(warnings.map((w) => w.path)).toEqual(["pools.0.baseUrl", "pools.1.baseUrl"]);
		expect(warnings[0]?.message).toContain("https://api.openai.com/chat/completions");
		expect(warnings[0]?.message).toContain("usually https://api.openai.com/v1");
		expect(warnings[1]?.message).toContain("https://api.anthropic.com/messages");
	});

	it("production: a pool pointed at the dev mock or loopback", () => {
		const config = parsed({
			...good,
			pools: [{ ...pool, baseUrl: "http://mock.invalid/openai/v1" }],
		});
		const messages = configWarnings(config, production).map((w) => w.message);
		expect(messages).toContainEqual(expect.stringContaining("a deployed Worker cannot reach"));
	});

	it("placeholder hashes, the empty key's hash, and the dev key in production", () => {
		const config = parsed({
			...good,
			tenants: [
				{ ...tenant, keySha256: ["0".repeat(64)] },
				{
					...tenant,
					name: "other",
					keySha256: ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
				},
				{ ...tenant, name: "dev", keySha256: [DEV_KEY_SHA256] },
			],
		});
		const byPath = Object.fromEntries(
			configWarnings(config, production).map((w) => [w.path, w.message]),
		);
		expect(byPath["tenants.0.keySha256.0"]).toContain("placeholder");
		expect(byPath["tenants.1.keySha256.0"]).toContain("empty key");
		expect(byPath["tenants.2.keySha256.0"]).toContain("tb-dev-key");
		// The dev key is what local dev is for.
		expect(configWarnings(config, dev).map((w) => w.path)).not.toContain("tenants.2.keySha256.0");
	});

	it("production without an admin key", () => {
		const config = parsed({ pools: [pool], tenants: [tenant] });
		const paths = configWarnings(config, production).map((w) => w.path);
		expect(paths).toContain("adminKeySha256");
		expect(configWarnings(config, dev).map((w) => w.path)).not.toContain("adminKeySha256");
	});
});

describe("errors say what to write", () => {
	it('a limit given as a string: "a number, or \\"auto\\""', () => {
		const message = messageOf({
			...good,
			pools: [{ ...pool, limits: { ...pool.limits, tokensPerMinute: "60000" } }],
		});
		expect(message).toContain(
			'TOLLBOOTH_CONFIG.pools.0.limits.tokensPerMinute: must be a number, or "auto"; got the string "60000"',
		);
	});

	it("an unknown key, with the nearest known one", () => {
		const message = messageOf({
			...good,
			pools: [{ ...pool, limits: { ...pool.limits, brustTokens: 5 }, maxWaitMS: 100 }],
			tenants: [{ ...tenant, wieght: 2 }],
		});
		expect(message).toContain(
			'pools.0.limits: unknown key "brustTokens" (did you mean "burstTokens"?)',
		);
		expect(message).toContain('pools.0: unknown key "maxWaitMS" (did you mean "maxWaitMs"?)');
		expect(message).toContain('tenants.0: unknown key "wieght" (did you mean "weight"?)');
	});

	it("an unknown key with nothing near it, a wrong enum value, a fraction, a missing field", () => {
		const message = messageOf({
			pools: [
				{ ...pool, provider: "azure", limits: { ...pool.limits, maxConcurrent: 1.5 }, colour: 1 },
			],
		});
		expect(message).toContain('pools.0: unknown key "colour"');
		expect(message).not.toContain("did you mean");
		expect(message).toContain(
			'pools.0.provider: must be "openai" or "anthropic" or "openai-compatible"; got the string "azure"',
		);
		expect(message).toContain(
			"pools.0.limits.maxConcurrent: must be a whole number, got the number 1.5",
		);
		expect(message).toContain("TOLLBOOTH_CONFIG.tenants: is required (a list)");
	});
});
