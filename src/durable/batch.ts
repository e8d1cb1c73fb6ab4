// The Batch Durable Object: one per batch, named by its id. A shell around core/batch-state that
// keeps the batch row and one row per line in SQLite, records each line's result once, and writes
// the result files to R2 when every line is done, the batch is cancelled or its window ends.
import { DurableObject } from "cloudflare:workers";
import { type LineResult, outcomeOf, resultLine } from "../core/batch-results.ts";
import {
	advanceBatch,
	type BatchApi,
	type BatchInputError,
	type BatchRecord,
	cancelBatch,
	dueForResults,
	failBatch,
	finishBatch,
	isTerminal,
	type LineCounts,
	mayRunLine,
	type NewBatch,
	nextDueMs,
	startBatch,
	type UnfinishedReason,
} from "../core/batch-state.ts";
import { type WebhookDelivery, type WebhookState, webhookBody } from "../core/batch-webhook.ts";
import { newId, OUTPUT_FILE_TTL_MS, putFile } from "./batch-files.ts";
import { indexBatch } from "./batch-index.ts";
import { sendWebhook } from "./batch-webhook.ts";

export { completionWindowMs, isTerminal } from "../core/batch-state.ts";
export type { BatchApi, BatchInputError, BatchRecord, LineCounts, LineResult, NewBatch };

export interface BatchView {
	record: BatchRecord;
	counts: LineCounts;
	/** Its completion webhook, once the batch has ended with one to send. */
	webhook?: WebhookStatus;
}

/** How a batch's webhook stands, as an operator sees it (never its secret's name or body). */
export interface WebhookStatus {
	url: string;
	state: WebhookState;
	attempts: number;
	/** When the next try is due, while pending. */
	nextMs?: number;
}

/** Whether a delivered line should be sent: yes, already answered, or the batch has stopped. */
export type LineGate = "run" | "done" | "stop";

const SCHEMA = [
	"CREATE TABLE IF NOT EXISTS batch (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)",
	`CREATE TABLE IF NOT EXISTS lines (custom_id TEXT PRIMARY KEY, position INTEGER NOT NULL,
		outcome TEXT, result TEXT, last_error TEXT)`,
	"CREATE INDEX IF NOT EXISTS lines_by_position ON lines (position)",
	"CREATE TABLE IF NOT EXISTS webhook (id INTEGER PRIMARY KEY CHECK (id = 1), delivery TEXT NOT NULL)",
];

export class Batch extends DurableObject<Env> {
	#record: BatchRecord | undefined;
	/** The status last written to the index of all batches by this instance. */
	#indexedStatus: string | undefined;
	#indexing: Promise<void> = Promise.resolve();
	#finishing: Promise<void> | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		ctx.blockConcurrencyWhile(async () => {
			for (const statement of SCHEMA) ctx.storage.sql.exec(statement);
			const row = ctx.storage.sql.exec<{ record: string }>("SELECT record FROM batch").toArray()[0];
			this.#record = row ? (JSON.parse(row.record) as BatchRecord) : undefined;
		});
	}

	/**
	 * Stores a new batch and its lines' ids, in progress; or, given its input's errors, failed with
	 * no line to run. Creating it again answers the first.
	 */
	async create(
		batch: NewBatch,
		customIds: string[],
		windowMs: number,
		errors: BatchInputError[] = [],
	): Promise<BatchView> {
		if (!this.#record) {
			const now = Date.now();
			const record =
				errors.length > 0
					? failBatch(batch, errors, windowMs, now)
					: startBatch(batch, windowMs, now);
			this.ctx.storage.transactionSync(() => {
				customIds.forEach((customId, position) => {
					this.ctx.storage.sql.exec(
						"INSERT INTO lines (custom_id, position) VALUES (?, ?)",
						customId,
						position,
					);
				});
				this.#save(record);
				if (isTerminal(record.status)) this.#queueWebhook(now);
			});
			await this.#arrangeAlarm();
		}
		await this.#syncIndex();
		return this.#view();
	}

	/** The batch and its counts; undefined for an object no batch was created in (or deleted). */
	async view(): Promise<BatchView | undefined> {
		return this.#record && this.#view();
	}

	#view(): BatchView {
		const webhook = this.#webhook();
		const status = webhook && {
			url: webhook.url,
			state: webhook.state,
			attempts: webhook.attempts,
			...(webhook.state === "pending" && { nextMs: webhook.nextMs }),
		};
		return { record: this.#batch(), counts: this.#counts(), ...(status && { webhook: status }) };
	}

	/**
	 * Records a line's result once: a second delivery of the same line changes nothing (false).
	 * A result that arrives after the batch was closed is dropped the same way.
	 */
	async recordLine(customId: string, result: LineResult): Promise<boolean> {
		const written = this.#recordOnce(customId, result);
		if (written) await this.#advance();
		return written;
	}

	/**
	 * A queue consumer's delivery in one call: records finished lines' results (each once, as
	 * recordLine), notes the last failure of lines to be tried again (the dead-letter queue reports
	 * it), then says of each line still to run whether it should be sent: yes, already answered
	 * (a duplicate delivery), or the batch has stopped.
	 */
	async syncLines(
		results: { customId: string; result: LineResult }[],
		failures: { customId: string; message: string }[],
		pending: string[],
	): Promise<Record<string, LineGate>> {
		const sql = this.ctx.storage.sql;
		let written = false;
		this.ctx.storage.transactionSync(() => {
			for (const { customId, message } of failures) {
				sql.exec(
					"UPDATE lines SET last_error = ? WHERE custom_id = ? AND outcome IS NULL",
					message,
					customId,
				);
			}
			for (const { customId, result } of results) {
				written = this.#recordOnce(customId, result) || written;
			}
		});
		if (written) await this.#advance();
		const mayRun = mayRunLine(this.#batch(), Date.now());
		const gates: Record<string, LineGate> = {};
		for (const customId of pending) {
			const row = sql
				.exec<{ outcome: string | null }>("SELECT outcome FROM lines WHERE custom_id = ?", customId)
				.toArray()[0];
			gates[customId] = !row || row.outcome !== null ? "done" : mayRun ? "run" : "stop";
		}
		return gates;
	}

	#recordOnce(customId: string, result: LineResult): boolean {
		return (
			this.ctx.storage.sql.exec(
				"UPDATE lines SET outcome = ?, result = ? WHERE custom_id = ? AND outcome IS NULL",
				outcomeOf(result),
				JSON.stringify(result),
				customId,
			).rowsWritten > 0
		);
	}

	/** A line the queue gave up on: failed, with its last error. */
	async deadLine(customId: string): Promise<boolean> {
		const row = this.ctx.storage.sql
			.exec<{ last_error: string | null }>(
				"SELECT last_error FROM lines WHERE custom_id = ?",
				customId,
			)
			.toArray()[0];
		const message = row?.last_error ?? "The line could not be delivered to its pool.";
		return this.recordLine(customId, { kind: "failed", code: "max_attempts_exceeded", message });
	}

	/** Stops new lines now; results are written once lines already sent have had time to end. */
	async cancel(): Promise<BatchView> {
		const record = cancelBatch(this.#batch(), Date.now());
		if (record !== this.#record) {
			this.#save(record);
			await this.#arrangeAlarm();
		}
		await this.#syncIndex();
		return this.#view();
	}

	/** Deletes the batch's rows (its files are the caller's to delete). */
	async remove(): Promise<void> {
		await this.ctx.storage.deleteAlarm();
		await this.ctx.storage.deleteAll();
		this.#record = undefined;
	}

	override async alarm(): Promise<void> {
		await this.#advance();
		await this.#sendDueWebhook();
	}

	#webhook(): WebhookDelivery | undefined {
		const row = this.ctx.storage.sql
			.exec<{ delivery: string }>("SELECT delivery FROM webhook")
			.toArray()[0];
		return row ? (JSON.parse(row.delivery) as WebhookDelivery) : undefined;
	}

	/** The batch has ended: its webhook, if it has one, is due now, with the body frozen. */
	#queueWebhook(nowMs: number): void {
		const record = this.#batch();
		if (!record.webhook) return;
		const delivery: WebhookDelivery = {
			...record.webhook,
			body: webhookBody(record, this.#counts()),
			state: "pending",
			attempts: 0,
			nextMs: nowMs,
		};
		this.ctx.storage.sql.exec(
			"INSERT OR REPLACE INTO webhook (id, delivery) VALUES (1, ?)",
			JSON.stringify(delivery),
		);
	}

	async #sendDueWebhook(): Promise<void> {
		const delivery = this.#webhook();
		const now = Date.now();
		if (delivery?.state !== "pending" || delivery.nextMs > now) return;
		const { id: batchId, tenant, pool } = this.#batch();
		const env = this.env as unknown as Record<string, unknown>;
		const send: typeof fetch = (input, init) => fetch(input, init);
		const next = await sendWebhook(delivery, { batchId, tenant, pool }, env, send, now);
		this.ctx.storage.sql.exec(
			"UPDATE webhook SET delivery = ? WHERE id = 1",
			JSON.stringify(next.delivery),
		);
		await this.#arrangeAlarm();
	}

	#batch(): BatchRecord {
		if (!this.#record) throw new Error("no such batch");
		return this.#record;
	}

	#counts(): LineCounts {
		const counts: LineCounts = {
			total: 0,
			succeeded: 0,
			failed: 0,
			cancelled: 0,
			expired: 0,
			pending: 0,
		};
		const rows = this.ctx.storage.sql.exec<{ outcome: string | null; n: number }>(
			"SELECT outcome, COUNT(*) AS n FROM lines GROUP BY outcome",
		);
		for (const { outcome, n } of rows) {
			counts.total += n;
			const key = (outcome ?? "pending") as keyof LineCounts;
			if (key in counts) counts[key] += n;
		}
		return counts;
	}

	#save(record: BatchRecord): void {
		this.ctx.storage.sql.exec(
			"INSERT OR REPLACE INTO batch (id, record) VALUES (1, ?)",
			JSON.stringify(record),
		);
		this.#record = record;
	}

	/** Applies what is due: finishing when every line is done, or the window or a cancel's grace ended. */
	async #advance(): Promise<void> {
		const now = Date.now();
		const record = this.#record && advanceBatch(this.#record, this.#counts(), now);
		if (!record) return;
		if (record !== this.#record) this.#save(record);
		const due = dueForResults(record, now);
		if (due.due) {
			this.#finishing ??= this.#writeResults(due.unfinished).finally(() => {
				this.#finishing = undefined;
			});
			await this.#finishing;
		}
		await this.#syncIndex();
		await this.#arrangeAlarm();
	}

	/**
	 * Keeps the batch's status in the index of all batches (GET /admin/batches filters on it). One
	 * write at a time, each of the status current when it starts, so the last written is the latest.
	 */
	async #syncIndex(): Promise<void> {
		this.#indexing = this.#indexing.then(async () => {
			const record = this.#record;
			if (!record || record.status === this.#indexedStatus) return;
			try {
				await indexBatch(this.env.BATCH_FILES, record);
				this.#indexedStatus = record.status;
			} catch (error) {
				// The next change tries again; the batch itself is unaffected.
				console.error(
					JSON.stringify({ event: "batch_index", batch: record.id, message: String(error) }),
				);
			}
		});
		await this.#indexing;
	}

	/** Closes the lines that never ran, writes the result files, and ends the batch. */
	async #writeResults(unfinished: UnfinishedReason): Promise<void> {
		const sql = this.ctx.storage.sql;
		sql.exec("UPDATE lines SET outcome = ? WHERE outcome IS NULL", unfinished);
		const record = this.#batch();
		if (isTerminal(record.status)) return;
		const all: string[] = [];
		const succeeded: string[] = [];
		const failed: string[] = [];
		const rows = sql.exec<{ custom_id: string; outcome: string; result: string | null }>(
			"SELECT custom_id, outcome, result FROM lines ORDER BY position",
		);
		for (const row of rows) {
			const result =
				row.result === null
					? (row.outcome as UnfinishedReason)
					: (JSON.parse(row.result) as LineResult);
			const line = resultLine(record.api, row.custom_id, newId("batch_req_"), result);
			all.push(line);
			(row.outcome === "succeeded" ? succeeded : failed).push(line);
		}
		const files: { outputFileId?: string; errorFileId?: string } = {};
		const write = async (lines: string[], suffix: string) => {
			const id = newId("file-");
			const file = { id, tenant: record.tenant, pool: record.pool, purpose: "batch_output" };
			const filename = `${record.id}_${suffix}.jsonl`;
			const createdMs = Date.now();
			await putFile(
				this.env.BATCH_FILES,
				{ ...file, filename, createdMs, expiresMs: createdMs + OUTPUT_FILE_TTL_MS },
				`${lines.join("\n")}\n`,
			);
			return id;
		};
		if (record.api === "anthropic") {
			files.outputFileId = await write(all, "results");
		} else {
			if (succeeded.length > 0) files.outputFileId = await write(succeeded, "output");
			if (failed.length > 0) files.errorFileId = await write(failed, "error");
		}
		const now = Date.now();
		this.#save(finishBatch(this.#batch(), files, now));
		this.#queueWebhook(now);
	}

	/** The next of: the batch's own due time, and its webhook's next send. */
	async #arrangeAlarm(): Promise<void> {
		const webhook = this.#record && this.#webhook();
		const times = [
			this.#record && nextDueMs(this.#record),
			webhook?.state === "pending" ? webhook.nextMs : undefined,
		];
		const due = times.filter((ms) => ms !== undefined);
		const dueMs = due.length > 0 ? Math.min(...due) : undefined;
		if (dueMs === undefined) await this.ctx.storage.deleteAlarm();
		else await this.ctx.storage.setAlarm(dueMs);
	}
}
