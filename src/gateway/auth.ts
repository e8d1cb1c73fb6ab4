// Gateway keys: read from the request by one rule, compared by SHA-256 so the configuration never
// holds a key.
import { createHash } from "node:crypto";
import type { Config, TenantConfig } from "../config.ts";
import { GatewayError } from "./errors.ts";

/**
 * The gateway key of a request, from `Authorization: Bearer <key>` or `x-api-key: <key>` (the
 * SDKs send one of them). The rule when both come: they must carry the same key, else 401; an
 * Authorization header that is not a Bearer key is refused, never skipped for x-api-key.
 */
export function gatewayKeyOf(headers: Headers): string | undefined {
	const authorization = headers.get("authorization")?.trim();
	const apiKey = headers.get("x-api-key")?.trim() || undefined;
	if (!authorization) return apiKey;
	const bearer = authorization.match(/^Bearer\s+(\S+)$/i)?.[1];
	if (bearer === undefined) {
		throw new GatewayError(
			401,
			"The Authorization header must be 'Bearer <gateway key>'.",
			"bad_authorization",
		);
	}
	if (apiKey !== undefined && apiKey !== bearer) {
		throw new GatewayError(
			401,
			"Authorization and x-api-key carry different keys: send the gateway key in one of them.",
			"conflicting_keys",
		);
	}
	return bearer;
}

/** node:crypto's hash is synchronous: crypto.subtle's costs a request an await and more CPU. */
export function sha256Hex(text: string): string {
	return createHash("sha256").update(text).digest("hex");
}

/** Beyond this many remembered keys the memo starts over (a flood of random keys cannot grow it). */
const MAX_REMEMBERED_KEYS = 1_000;
const hashByKey = new Map<string, string>();

/** A gateway key's SHA-256, remembered: the few keys an isolate sees skip the hash (~15 µs each). */
export function gatewayKeyHash(key: string): string {
	let hash = hashByKey.get(key);
	if (hash === undefined) {
		hash = sha256Hex(key);
		if (hashByKey.size >= MAX_REMEMBERED_KEYS) hashByKey.clear();
		hashByKey.set(key, hash);
	}
	return hash;
}

const tenantsByHash = new WeakMap<Config, Map<string, TenantConfig>>();

export function findTenant(config: Config, key: string): TenantConfig | undefined {
	let byHash = tenantsByHash.get(config);
	if (!byHash) {
		byHash = new Map(
			config.tenants.flatMap((tenant) => tenant.keySha256.map((hash) => [hash, tenant] as const)),
		);
		tenantsByHash.set(config, byHash);
	}
	return byHash.get(gatewayKeyHash(key));
}
