// The tenant registry Durable Object (one, named "registry"): runtime tenants and their gateway
// keys in SQLite. Keys arrive as SHA-256 hashes with a visible prefix; the key itself never does.
import { DurableObject } from "cloudflare:workers";
import type { TenantPolicy } from "../config.ts";

export const REGISTRY_NAME = "registry";

export interface TenantRecord {
	policy: TenantPolicy;
	createdMs: number;
	updatedMs: number;
}

export interface KeyRecord {
	id: string;
	tenant: string;
	prefix: string;
	createdMs: number;
	expiresAtMs: number | null;
	lastUsedMs: number | null;
}

/** What a key lookup finds: the key's tenant, and when the key stops working. */
export interface KeyMatch {
	keyId: string;
	policy: TenantPolicy;
	expiresAtMs: number | null;
}

interface TenantRow extends Record<string, SqlStorageValue> {
	name: string;
	policy: string;
	created_ms: number;
	updated_ms: number;
}

interface KeyRow extends Record<string, SqlStorageValue> {
	id: string;
	tenant: string;
	prefix: string;
	created_ms: number;
	expires_ms: number | null;
	last_used_ms: number | null;
}

/** A lookup writes last-used at most this often per key. */
const LAST_USED_RESOLUTION_MS = 60_000;

export class TenantRegistry extends DurableObject<Env> {
	readonly #sql: SqlStorage;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => {
			this.#sql.exec(`CREATE TABLE IF NOT EXISTS tenants (
				name TEXT PRIMARY KEY, policy TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)`);
			this.#sql.exec(`CREATE TABLE IF NOT EXISTS keys (
				id TEXT PRIMARY KEY, tenant TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
				created_ms INTEGER NOT NULL, expires_ms INTEGER, last_used_ms INTEGER)`);
			this.#sql.exec("CREATE INDEX IF NOT EXISTS keys_by_tenant ON keys (tenant)");
		});
	}

	async listTenants(): Promise<TenantRecord[]> {
		return this.#sql.exec<TenantRow>("SELECT * FROM tenants ORDER BY name").toArray().map(tenantOf);
	}

	async getTenant(name: string): Promise<TenantRecord | undefined> {
		const row = this.#sql
			.exec<TenantRow>("SELECT * FROM tenants WHERE name = ?", name)
			.toArray()[0];
		return row ? tenantOf(row) : undefined;
	}

	/** Adds a tenant; false when the name is taken. */
	async createTenant(policy: TenantPolicy): Promise<boolean> {
		if (await this.getTenant(policy.name)) return false;
		const now = Date.now();
		this.#sql.exec(
			"INSERT INTO tenants (name, policy, created_ms, updated_ms) VALUES (?, ?, ?, ?)",
			policy.name,
			JSON.stringify(policy),
			now,
			now,
		);
		return true;
	}

	/** Replaces a tenant's policy; undefined when there is no such tenant. */
	async updateTenant(policy: TenantPolicy): Promise<TenantRecord | undefined> {
		const row = this.#sql
			.exec<TenantRow>(
				"UPDATE tenants SET policy = ?, updated_ms = ? WHERE name = ? RETURNING *",
				JSON.stringify(policy),
				Date.now(),
				policy.name,
			)
			.toArray()[0];
		return row ? tenantOf(row) : undefined;
	}

	/** Removes a tenant and every key it had; false when there is no such tenant. */
	async deleteTenant(name: string): Promise<boolean> {
		this.#sql.exec("DELETE FROM keys WHERE tenant = ?", name);
		return this.#sql.exec("DELETE FROM tenants WHERE name = ?", name).rowsWritten > 0;
	}

	async addKey(
		tenant: string,
		key: { id: string; hash: string; prefix: string; expiresAtMs: number | null },
	): Promise<void> {
		this.#sql.exec(
			"INSERT INTO keys (id, tenant, hash, prefix, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
			key.id,
			tenant,
			key.hash,
			key.prefix,
			Date.now(),
			key.expiresAtMs,
		);
	}

	async listKeys(tenant: string): Promise<KeyRecord[]> {
		return this.#sql
			.exec<KeyRow>(
				"SELECT id, tenant, prefix, created_ms, expires_ms, last_used_ms FROM keys WHERE tenant = ? ORDER BY created_ms",
				tenant,
			)
			.toArray()
			.map(keyOf);
	}

	/** Revokes a key at once (here; isolates' caches within KEY_CACHE_MS); false when unknown. */
	async revokeKey(tenant: string, id: string): Promise<boolean> {
		return (
			this.#sql.exec("DELETE FROM keys WHERE tenant = ? AND id = ?", tenant, id).rowsWritten > 0
		);
	}

	/** The tenant of a key by its SHA-256, if the key exists and has not expired. */
	async lookupKey(hash: string): Promise<KeyMatch | undefined> {
		const now = Date.now();
		const row = this.#sql
			.exec<KeyRow & { policy: string }>(
				`SELECT keys.id, keys.expires_ms, keys.last_used_ms, tenants.policy FROM keys
				JOIN tenants ON tenants.name = keys.tenant WHERE keys.hash = ?`,
				hash,
			)
			.toArray()[0];
		if (!row || (row.expires_ms !== null && row.expires_ms <= now)) return undefined;
		if (row.last_used_ms === null || now - row.last_used_ms >= LAST_USED_RESOLUTION_MS) {
			this.#sql.exec("UPDATE keys SET last_used_ms = ? WHERE id = ?", now, row.id);
		}
		return {
			keyId: row.id,
			policy: JSON.parse(row.policy) as TenantPolicy,
			expiresAtMs: row.expires_ms,
		};
	}
}

function tenantOf(row: TenantRow): TenantRecord {
	return {
		policy: JSON.parse(row.policy) as TenantPolicy,
		createdMs: row.created_ms,
		updatedMs: row.updated_ms,
	};
}

function keyOf(row: KeyRow): KeyRecord {
	return {
		id: row.id,
		tenant: row.tenant,
		prefix: row.prefix,
		createdMs: row.created_ms,
		expiresAtMs: row.expires_ms,
		lastUsedMs: row.last_used_ms,
	};
}
