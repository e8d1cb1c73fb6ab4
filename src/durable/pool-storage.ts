// The Pool object's SQLite storage: one row holding the pool's snapshot, under a schema version
// that the constructor migrates forward.
import type { PoolSnapshot } from "../core/pool-state.ts";

const SCHEMA_VERSION = 2;

export class PoolStorage {
	readonly #sql: SqlStorage;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	/** Creates or upgrades the tables; run once, inside blockConcurrencyWhile. */
	migrate(): void {
		const sql = this.#sql;
		sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
		const row = sql
			.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
			.toArray()[0];
		const version = row ? Number(row.value) : 0;
		if (version < 1) {
			sql.exec(
				"CREATE TABLE scheduler_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot TEXT NOT NULL)",
			);
		}
		if (version < 2) {
			// Version 2 stores the provider's health beside the scheduler's snapshot.
			sql.exec("UPDATE scheduler_state SET snapshot = json_object('scheduler', json(snapshot))");
		}
		if (version !== SCHEMA_VERSION) {
			sql.exec(
				"INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				String(SCHEMA_VERSION),
			);
		}
	}

	load(): PoolSnapshot | undefined {
		const row = this.#sql
			.exec<{ snapshot: string }>("SELECT snapshot FROM scheduler_state WHERE id = 1")
			.toArray()[0];
		return row ? (JSON.parse(row.snapshot) as PoolSnapshot) : undefined;
	}

	/** Writes the snapshot; returns the rows SQLite reports written. */
	save(snapshot: PoolSnapshot): number {
		const cursor = this.#sql.exec(
			"INSERT INTO scheduler_state (id, snapshot) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot",
			JSON.stringify(snapshot),
		);
		cursor.toArray();
		return cursor.rowsWritten;
	}
}
