// Which tenant a gateway key belongs to: TOLLBOOTH_CONFIG's tenants first, then the runtime
// registry's keys, looked up through a short isolate cache so a request pays no round trip.
import type { Config, TenantPolicy } from "../config.ts";
import { type KeyMatch, REGISTRY_NAME } from "../durable/registry.ts";
import { findTenant, gatewayKeyHash } from "./auth.ts";

/** Runtime keys start with this, so any other key never costs a registry lookup. */
export const RUNTIME_KEY_PREFIX = "tb_live_";

/**
 * How long an isolate trusts what the registry said about a key. A revoked key stops working
 * everywhere within this (and at once in the isolate that revoked it); expiry is checked on every
 * request against the cached expiry.
 */
export const KEY_CACHE_MS = 4_000;
/** An unknown key is asked about again after this: a new key works within it. */
const UNKNOWN_KEY_CACHE_MS = 1_000;
/** Beyond this many cached keys the cache starts over (a flood of random keys cannot grow it). */
const MAX_CACHED_KEYS = 10_000;

const cache = new Map<string, { match: KeyMatch | undefined; fetchedMs: number }>();

/** Forgets what this isolate knows of a key or a tenant's keys (after a change it made itself). */
export function forgetCachedKeys(tenant?: string): void {
	for (const [hash, entry] of cache) {
		if (tenant === undefined || entry.match?.policy.name === tenant) cache.delete(hash);
	}
}

export async function tenantForKey(
	config: Config,
	registry: DurableObjectNamespace<import("../durable/registry.ts").TenantRegistry>,
	key: string,
	nowMs = Date.now(),
): Promise<TenantPolicy | undefined> {
	const configured = findTenant(config, key);
	if (configured) return configured;
	if (!key.startsWith(RUNTIME_KEY_PREFIX)) return undefined;
	const hash = gatewayKeyHash(key);
	let entry = cache.get(hash);
	const ttl = entry?.match ? KEY_CACHE_MS : UNKNOWN_KEY_CACHE_MS;
	if (!entry || nowMs - entry.fetchedMs >= ttl) {
		const match = await registry.getByName(REGISTRY_NAME).lookupKey(hash);
		if (cache.size >= MAX_CACHED_KEYS) cache.clear();
		entry = { match, fetchedMs: nowMs };
		cache.set(hash, entry);
	}
	const match = entry.match;
	if (!match || (match.expiresAtMs !== null && nowMs >= match.expiresAtMs)) return undefined;
	// A name in TOLLBOOTH_CONFIG wins: configuration as code is the one definition of that tenant.
	return config.tenants.find((tenant) => tenant.name === match.policy.name) ?? match.policy;
}
