import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** A table as the page scanner matches records against it. */
export interface TableShape {
  name: string;
  columns: Array<{ type: string; notNull: boolean; hasDefault: boolean; rowidAlias: boolean }>;
}

/** Rows found on table leaf pages, by table, keyed by rowid: `[rowid, ...values]`. */
export interface PageScan {
  rows: Map<string, Map<number, unknown[]>>;
  /** Leaf pages whose records fit no table, or more than one. */
  unassignedPages: number;
}

const LEAF_TABLE_PAGE = 0x0d;

/**
 * Reads every table leaf page of a database file directly, without SQLite's b-tree: when a
 * cut or damaged interior page hides whole subtrees, their leaf pages are usually still on
 * disk. Each page is given to the one table whose columns its records fit (count, storage
 * classes, NOT NULL); pages on the freelist hold deleted rows and are skipped. The SQLite file
 * format is documented at sqlite.org/fileformat2.html.
 */
export function scanLeafPages(path: string, tables: TableShape[]): PageScan {
  const fd = openSync(path, 'r');
  try {
    const file = new PagedFile(fd);
    const free = file.freelist();
    const out: PageScan = {
      rows: new Map(tables.map((t) => [t.name, new Map()])),
      unassignedPages: 0,
    };
    for (let page = 1; page <= file.pageCount; page++) {
      if (free.has(page)) continue;
      const records = file.leafRecords(page);
      if (records === undefined || records.length === 0) continue;
      const owners = tables.filter((table) => records.every((r) => fits(table, r.values)));
      const exact = owners.filter((t) =>
        records.every((r) => r.values.length === t.columns.length),
      );
      const owner = owners.length === 1 ? owners[0] : exact.length === 1 ? exact[0] : undefined;
      if (owner === undefined) {
        out.unassignedPages += 1;
        continue;
      }
      const into = out.rows.get(owner.name) as Map<number, unknown[]>;
      for (const record of records) {
        const values = owner.columns.map((column, i) =>
          column.rowidAlias ? record.rowid : (record.values[i] ?? null),
        );
        into.set(record.rowid, [record.rowid, ...values]);
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function fits(table: TableShape, values: unknown[]): boolean {
  if (values.length > table.columns.length || values.length === 0) return false;
  for (const [i, column] of table.columns.entries()) {
    // Columns added by ALTER TABLE are absent from older records and take their defaults.
    if (i >= values.length) {
      if (column.notNull && !column.hasDefault) return false;
      continue;
    }
    const value = values[i];
    if (value === null) {
      if (column.notNull && !column.rowidAlias) return false;
      continue;
    }
    if (column.rowidAlias) return false;
    const type = column.type.toUpperCase();
    if (typeof value === 'string' && !(type.includes('TEXT') || type === '')) return false;
    if (Buffer.isBuffer(value) && !(type.includes('BLOB') || type === '')) return false;
    if (typeof value === 'number' && type.includes('TEXT')) return false;
  }
  return true;
}

interface LeafRecord {
  rowid: number;
  values: unknown[];
}

class PagedFile {
  readonly #fd: number;
  readonly pageSize: number;
  readonly usable: number;
  readonly pageCount: number;

  constructor(fd: number) {
    this.#fd = fd;
    const header = this.#read(0, 100);
    const raw = header.readUInt16BE(16);
    this.pageSize = raw === 1 ? 65536 : raw;
    this.usable = this.pageSize - header.readUInt8(20);
    this.pageCount = Math.floor(fstatSync(fd).size / this.pageSize);
  }

  /** Pages on the freelist, as far as its trunk chain can be followed. */
  freelist(): Set<number> {
    const header = this.#read(0, 100);
    const out = new Set<number>();
    let trunk = header.readUInt32BE(32);
    while (trunk > 0 && trunk <= this.pageCount && !out.has(trunk)) {
      out.add(trunk);
      const page = this.#page(trunk);
      const leaves = Math.min(page.readUInt32BE(4), (this.usable - 8) / 4);
      for (let i = 0; i < leaves; i++) out.add(page.readUInt32BE(8 + i * 4));
      trunk = page.readUInt32BE(0);
    }
    return out;
  }

  /** The records of a table leaf page, or undefined when it is not one or is malformed. */
  leafRecords(number: number): LeafRecord[] | undefined {
    const page = this.#page(number);
    const base = number === 1 ? 100 : 0;
    if (page.readUInt8(base) !== LEAF_TABLE_PAGE) return undefined;
    const cells = page.readUInt16BE(base + 3);
    if (base + 8 + cells * 2 > this.usable) return undefined;
    const out: LeafRecord[] = [];
    for (let i = 0; i < cells; i++) {
      const at = page.readUInt16BE(base + 8 + i * 2);
      const record = this.#cell(page, at);
      if (record === undefined) return undefined;
      out.push(record);
    }
    return out;
  }

  #cell(page: Buffer, at: number): LeafRecord | undefined {
    if (at < 8 || at >= this.usable) return undefined;
    const size = varint(page, at);
    const rowid = varint(page, at + size.length);
    let offset = at + size.length + rowid.length;
    const total = size.value;
    const local = this.#localPayload(total);
    if (offset + local > this.usable) return undefined;

    let payload = page.subarray(offset, offset + local);
    offset += local;
    if (local < total) {
      const rest = this.#overflow(page.readUInt32BE(offset), total - local);
      if (rest === undefined) return undefined;
      payload = Buffer.concat([payload, rest]);
    }
    const values = decodeRecord(payload);
    return values === undefined ? undefined : { rowid: rowid.value, values };
  }

  /** How much of a payload sits on the leaf page itself (file format, section 1.6). */
  #localPayload(total: number): number {
    const max = this.usable - 35;
    if (total <= max) return total;
    const min = Math.floor(((this.usable - 12) * 32) / 255) - 23;
    const k = min + ((total - min) % (this.usable - 4));
    return k <= max ? k : min;
  }

  #overflow(first: number, length: number): Buffer | undefined {
    const parts: Buffer[] = [];
    let left = length;
    let next = first;
    const seen = new Set<number>();
    while (left > 0) {
      if (next < 2 || next > this.pageCount || seen.has(next)) return undefined;
      seen.add(next);
      const page = this.#page(next);
      const take = Math.min(left, this.usable - 4);
      parts.push(page.subarray(4, 4 + take));
      left -= take;
      next = page.readUInt32BE(0);
    }
    return Buffer.concat(parts);
  }

  #page(number: number): Buffer {
    return this.#read((number - 1) * this.pageSize, this.pageSize);
  }

  #read(position: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    readSync(this.#fd, buffer, 0, length, position);
    return buffer;
  }
}

/** Decodes a record: a header of serial types, then the values (file format, section 2.1). */
function decodeRecord(payload: Buffer): unknown[] | undefined {
  if (payload.length === 0) return undefined;
  const headerSize = varint(payload, 0);
  if (headerSize.value > payload.length || headerSize.value < 1) return undefined;
  const types: number[] = [];
  for (let at = headerSize.length; at < headerSize.value; ) {
    const type = varint(payload, at);
    types.push(type.value);
    at += type.length;
  }
  const values: unknown[] = [];
  let at = headerSize.value;
  for (const type of types) {
    const width = serialWidth(type);
    if (width === undefined || at + width > payload.length) return undefined;
    values.push(serialValue(payload, at, type, width));
    at += width;
  }
  return at === payload.length ? values : undefined;
}

function serialWidth(type: number): number | undefined {
  if (type >= 12) return Math.floor((type - (type % 2 === 0 ? 12 : 13)) / 2);
  return [0, 1, 2, 3, 4, 6, 8, 8, 0, 0, undefined, undefined][type];
}

function serialValue(data: Buffer, at: number, type: number, width: number): unknown {
  if (type === 0) return null;
  if (type === 8) return 0;
  if (type === 9) return 1;
  if (type === 7) return data.readDoubleBE(at);
  if (type >= 1 && type <= 6) {
    return width === 8 ? Number(data.readBigInt64BE(at)) : data.readIntBE(at, width);
  }
  if (type % 2 === 0) return Buffer.from(data.subarray(at, at + width));
  return data.toString('utf8', at, at + width);
}

/** A SQLite varint: 1 to 9 bytes, big-endian, 7 bits per byte except a full ninth byte. */
function varint(data: Buffer, at: number): { value: number; length: number } {
  let value = 0n;
  for (let i = 0; i < 9; i++) {
    const byte = data[at + i] ?? 0;
    if (i === 8) {
      value = (value << 8n) | BigInt(byte);
      return { value: Number(BigInt.asIntN(64, value)), length: 9 };
    }
    value = (value << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) return { value: Number(BigInt.asIntN(64, value)), length: i + 1 };
  }
  return { value: Number(value), length: 9 };
}
