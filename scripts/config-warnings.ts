// What `npm run check-config` warns about in a configuration that parses but would fail or be
// unsafe once deployed: unset secrets, a baseUrl without its version path, placeholder key hashes,
// no admin key. Pure functions of the parsed config and the vars wrangler would give the Worker.
import type { Config } from "../src/config.ts";

export interface ConfigWarning {
	/** Where, as in the validation errors: "pools.0.baseUrl". */
	path: string;
	message: string;
}

export interface WarningContext {
	/** "production" (wrangler.toml's top level, secrets unseen) or local dev (.dev.vars seen). */
	target: "production" | "dev";
	/** The vars wrangler would give the Worker: wrangler.toml's, and for dev .dev.vars too. */
	vars: Record<string, unknown>;
}

/** The SHA-256 of the documented dev gateway key tb-dev-key, which must never open production. */
export const DEV_KEY_SHA256 = "6423bc78edada67c6009aaca1d26493619e3c253ff4747b1369e29ea5bb5a194";
/** The SHA-256 of an empty key. */
const EMPTY_KEY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** A version segment in an API root's path: /v1, /openai/v1, /v1beta/openai (Gemini's) ... */
const VERSION_PATH = /\/v\d+[a-z0-9]*(\/|$)/;

function placeholderHash(hash: string): string | undefined {
	if (/^(.)\1{63}$/.test(hash)) return "a placeholder (one digit repeated), not a key's hash";
	if (hash === EMPTY_KEY_SHA256) return "the hash of an empty key";
	return undefined;
}

export function secretWarnings(config: Config, context: WarningContext): ConfigWarning[] {
	const warnings: ConfigWarning[] = [];
	const seen = new Set<string>();
	config.pools.forEach((pool, i) => {
		const path = `pools.${i}.apiKeySecret`;
		const name = pool.apiKeySecret;
		const value = context.vars[name];
		if (context.target === "dev") {
			if (typeof value !== "string" || value === "") {
				warnings.push({
					path,
					message: `pool "${pool.name}" reads its provider key from ${name}, which local dev does not set: add ${name}="..." to .dev.vars`,
				});
			}
			return;
		}
		if (value !== undefined) {
			warnings.push({
				path,
				message: `pool "${pool.name}" takes its key from ${name}, a plain var in wrangler.toml that anyone with the file can read: remove it there and run: npx wrangler secret put ${name} --env=''`,
			});
		} else if (!seen.has(name)) {
			seen.add(name);
			warnings.push({
				path,
				message: `secret ${name} must exist in the deployed Worker (check-config cannot see secrets); if it does not: npx wrangler secret put ${name} --env=''`,
			});
		}
	});
	return warnings;
}

export function baseUrlWarnings(config: Config, context: WarningContext): ConfigWarning[] {
	const warnings: ConfigWarning[] = [];
	config.pools.forEach((pool, i) => {
		const path = `pools.${i}.baseUrl`;
		const url = new URL(pool.baseUrl);
		if (!VERSION_PATH.test(url.pathname)) {
			const root = `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
			const endpoint = pool.provider === "anthropic" ? "/messages" : "/chat/completions";
			warnings.push({
				path,
				message: `pool "${pool.name}": ${pool.baseUrl} has no version path, so requests would go to ${root}${endpoint}; the API root is usually ${root}/v1`,
			});
		}
		if (
			context.target === "production" &&
			/^(localhost|127\.|\[::1\]|mock\.invalid$)/.test(url.hostname)
		) {
			warnings.push({
				path,
				message: `pool "${pool.name}" points at ${url.host}, which a deployed Worker cannot reach`,
			});
		}
	});
	return warnings;
}

export function keyHashWarnings(config: Config, context: WarningContext): ConfigWarning[] {
	const warnings: ConfigWarning[] = [];
	config.tenants.forEach((tenant, i) => {
		tenant.keySha256.forEach((hash, j) => {
			const path = `tenants.${i}.keySha256.${j}`;
			const placeholder = placeholderHash(hash);
			if (placeholder) {
				warnings.push({
					path,
					message: `tenant "${tenant.name}": ${placeholder}; make a key with: npm run hash-key -- --new`,
				});
			} else if (context.target === "production" && hash === DEV_KEY_SHA256) {
				warnings.push({
					path,
					message: `tenant "${tenant.name}" accepts the documented dev key tb-dev-key in production; make a key with: npm run hash-key -- --new`,
				});
			}
		});
	});
	config.adminKeySha256.forEach((hash, j) => {
		const placeholder = placeholderHash(hash);
		if (placeholder) {
			warnings.push({ path: `adminKeySha256.${j}`, message: `${placeholder}` });
		}
	});
	return warnings;
}

export function adminWarnings(config: Config, context: WarningContext): ConfigWarning[] {
	if (context.target !== "production" || config.adminKeySha256.length > 0) return [];
	return [
		{
			path: "adminKeySha256",
			message:
				"no admin key: /admin/pools (each pool's live state) answers 401 to everyone; make one with: npm run hash-key -- --new",
		},
	];
}

/** Every warning for a configuration that parsed. */
export function configWarnings(config: Config, context: WarningContext): ConfigWarning[] {
	return [
		...secretWarnings(config, context),
		...baseUrlWarnings(config, context),
		...keyHashWarnings(config, context),
		...adminWarnings(config, context),
	];
}
