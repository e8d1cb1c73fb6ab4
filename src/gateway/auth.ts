// Gateway keys: read from the request, compared by SHA-256 so the configuration never holds a key.
import type { Config, TenantConfig } from "../config.ts";

export function gatewayKeyOf(headers: Headers): string | undefined {
	const bearer = headers
		.get("authorization")
		?.match(/^Bearer\s+(.+)$/i)?.[1]
		?.trim();
	return bearer || headers.get("x-api-key")?.trim() || undefined;
}

export async function sha256Hex(text: string): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

const tenantsByHash = new WeakMap<Config, Map<string, TenantConfig>>();

export async function findTenant(config: Config, key: string): Promise<TenantConfig | undefined> {
	let byHash = tenantsByHash.get(config);
	if (!byHash) {
		byHash = new Map(
			config.tenants.flatMap((tenant) => tenant.keySha256.map((hash) => [hash, tenant] as const)),
		);
		tenantsByHash.set(config, byHash);
	}
	return byHash.get(await sha256Hex(key));
}
