// Batch files in R2: inputs a tenant uploads and the output, error and results files a batch
// writes. Who owns a file travels in its R2 metadata, so a lookup answers only its owner; a file
// past its expiry answers as missing and is deleted then (and from its owner's listing).
import { newestFirst } from "./batch-index.ts";

export interface StoredFile {
	id: string;
	tenant: string;
	pool: string;
	/** "batch" for an input; "batch_output" for what a batch wrote. */
	purpose: string;
	filename: string;
	bytes: number;
	createdMs: number;
	/** When it is deleted; undefined: never. */
	expiresMs?: number;
}

/** How long a batch's output, error and results files are kept, as OpenAI keeps batch output. */
export const OUTPUT_FILE_TTL_MS = 30 * 24 * 3_600_000;

/** A random id with a prefix: "file-…", "batch_…", "msgbatch_…". */
export function newId(prefix: string): string {
	return `${prefix}${crypto.randomUUID().replaceAll("-", "")}`;
}

const fileKey = (id: string) => `files/${id}`;

const listingPrefix = (tenant: string, pool: string) =>
	`file-index/${encodeURIComponent(pool)}/${encodeURIComponent(tenant)}/`;

/** The file's entry in its owner's listing: newest first, the file's fields in its metadata. */
const listingKey = (file: Pick<StoredFile, "id" | "tenant" | "pool" | "createdMs">) =>
	`${listingPrefix(file.tenant, file.pool)}${newestFirst(file.createdMs, file.id)}`;

function metadataOf(file: StoredFile): Record<string, string> {
	return {
		id: file.id,
		tenant: file.tenant,
		pool: file.pool,
		purpose: file.purpose,
		filename: file.filename.slice(0, 512),
		bytes: String(file.bytes),
		createdMs: String(file.createdMs),
		...(file.expiresMs !== undefined && { expiresMs: String(file.expiresMs) }),
	};
}

function fileOf(id: string, meta: Record<string, string>, bytes: number): StoredFile {
	return {
		id,
		tenant: meta.tenant ?? "",
		pool: meta.pool ?? "",
		purpose: meta.purpose ?? "",
		filename: meta.filename ?? "",
		bytes,
		createdMs: Number(meta.createdMs ?? 0),
		...(meta.expiresMs !== undefined && { expiresMs: Number(meta.expiresMs) }),
	};
}

const hasExpired = (file: StoredFile, nowMs: number) =>
	file.expiresMs !== undefined && file.expiresMs <= nowMs;

export async function putFile(
	bucket: R2Bucket,
	file: Omit<StoredFile, "bytes">,
	body: string | Uint8Array,
): Promise<StoredFile> {
	const bytes =
		typeof body === "string" ? new TextEncoder().encode(body).byteLength : body.byteLength;
	const stored = { ...file, bytes };
	const customMetadata = metadataOf(stored);
	await bucket.put(fileKey(file.id), body, { customMetadata });
	await bucket.put(listingKey(stored), "", { customMetadata });
	return stored;
}

/**
 * The file, if `tenant` owns it in `pool` and it has not expired; anyone else's answers
 * undefined, as a missing one. An expired file is deleted on the way.
 */
export async function findFile(
	bucket: R2Bucket,
	id: string,
	tenant: string,
	pool: string,
	nowMs = Date.now(),
): Promise<StoredFile | undefined> {
	const object = await bucket.head(fileKey(id));
	if (!object) return undefined;
	const file = fileOf(id, object.customMetadata ?? {}, object.size);
	if (file.tenant !== tenant || file.pool !== pool) return undefined;
	if (hasExpired(file, nowMs)) {
		await removeFile(bucket, file);
		return undefined;
	}
	return file;
}

export async function readFileText(bucket: R2Bucket, id: string): Promise<string | undefined> {
	const object = await bucket.get(fileKey(id));
	return object ? object.text() : undefined;
}

async function removeFile(bucket: R2Bucket, file: StoredFile): Promise<void> {
	await bucket.delete([fileKey(file.id), listingKey(file)]);
}

/** Deletes a file and its listing entry. */
export async function deleteFile(bucket: R2Bucket, id: string): Promise<void> {
	const object = await bucket.head(fileKey(id));
	if (object) await removeFile(bucket, fileOf(id, object.customMetadata ?? {}, object.size));
}

export interface FileQuery {
	purpose?: string;
	/** The last id of the previous page. */
	after?: string;
	limit: number;
	order: "asc" | "desc";
}

/** Expired files deleted by one listing at most: the rest go on the next. */
const MAX_SWEPT_PER_LISTING = 100;

/**
 * A page of the owner's files by creation time, from its listing (one R2 list per 1,000 files),
 * leaving out expired files and deleting them on the way.
 */
export async function listFiles(
	bucket: R2Bucket,
	owner: { tenant: string; pool: string },
	query: FileQuery,
	nowMs = Date.now(),
): Promise<{ files: StoredFile[]; hasMore: boolean }> {
	const prefix = listingPrefix(owner.tenant, owner.pool);
	const live: StoredFile[] = [];
	const expired: StoredFile[] = [];
	let cursor: string | undefined;
	do {
		const page = await bucket.list({
			prefix,
			include: ["customMetadata"],
			...(cursor && { cursor }),
		});
		for (const object of page.objects) {
			const meta = object.customMetadata ?? {};
			const file = fileOf(meta.id ?? "", meta, Number(meta.bytes ?? 0));
			(hasExpired(file, nowMs) ? expired : live).push(file);
		}
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor);
	await Promise.all(
		expired.slice(0, MAX_SWEPT_PER_LISTING).map((file) => removeFile(bucket, file)),
	);
	let files = live.filter((file) => query.purpose === undefined || file.purpose === query.purpose);
	if (query.order === "asc") files.reverse();
	if (query.after !== undefined)
		files = files.slice(files.findIndex((file) => file.id === query.after) + 1);
	return { files: files.slice(0, query.limit), hasMore: files.length > query.limit };
}
