/**
 * The fake inventory's in-memory state: books, inventory records and the transaction log, held in
 * the JSON shapes of INVENTORY_CONTRACT.md (snake_case, price as a decimal string, naive UTC
 * timestamps).
 *
 * Every method is synchronous, so on Node's single thread a check-and-apply (`adjust`) cannot
 * interleave with another request: the fake's adjusts are atomic. (The real service's are not:
 * see the contract's "read-modify-write without a lock"; the fake does not reproduce lost updates.)
 */
import { randomUUID } from "node:crypto"
import type { SeedBook } from "./Catalog.js"

/** A book as the inventory serialises it under `"book"` (INVENTORY_CONTRACT.md, GET inventory). */
export interface BookRecord {
  readonly id: string
  readonly title: string
  readonly subtitle: string | null
  readonly authors: ReadonlyArray<string>
  readonly genres: ReadonlyArray<string>
  readonly description: string
  readonly price: string
  readonly cover_image_url: string
  readonly rating: number | null
  readonly created_at: string
  readonly updated_at: string
  readonly is_active: boolean
}

/** An inventory record as serialised under `"inventory"` (INVENTORY_CONTRACT.md). */
export interface InventoryRecord {
  readonly id: string
  readonly book_id: string
  readonly quantity_available: number
  readonly quantity_total: number
  readonly reorder_point: number
  readonly created_at: string
  readonly updated_at: string
}

/** One entry of the audit trail (INVENTORY_CONTRACT.md, POST adjust / GET transactions). */
export interface TransactionRecord {
  readonly id: string
  readonly book_id: string
  readonly transaction_type: "stock_out" | "stock_in" | "adjustment"
  readonly quantity_change: number
  readonly notes: string | null
  readonly timestamp: string
}

/** The body of GET /api/v1/inventory/{book_id}: the record and its book. */
export interface StockView {
  readonly inventory: InventoryRecord
  readonly book: BookRecord
}

/** The `pagination` object of the contract's list responses. */
export interface Pagination {
  readonly total: number
  readonly page: number
  readonly per_page: number
  readonly pages: number
  readonly has_next: boolean
  readonly has_prev: boolean
}

/** One page of a list plus its pagination object. */
export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly pagination: Pagination
}

/**
 * What an adjust did: `Applied` with the transaction recorded, or `WouldGoNegative` (the
 * contract's 400) with the quantity that was available, nothing changed.
 */
export type AdjustOutcome =
  | { readonly _tag: "Applied"; readonly transaction: TransactionRecord }
  | { readonly _tag: "WouldGoNegative"; readonly quantityAvailable: number }

/** Reorder point the real service gives new records (its LOW_STOCK_THRESHOLD). */
export const defaultReorderPoint = 5

/**
 * Formats an instant as the service does: naive UTC ISO 8601 without zone designator, fraction
 * only when non-zero, in microseconds like Python's `isoformat()` ("2025-01-01T12:00:00",
 * "2025-01-01T12:00:00.123000").
 */
export const naiveUtc = (date: Date): string => {
  const iso = date.toISOString() // 2025-01-01T12:00:00.123Z
  const seconds = iso.slice(0, 19)
  const millis = iso.slice(20, 23)
  return millis === "000" ? seconds : `${seconds}.${millis}000`
}

/**
 * Cuts one page (1-based `page`, `perPage` items) out of `all`. `pages` is at least 1 even for an
 * empty list, as the real service computes it (`max(1, ceil(total / per_page))`).
 */
export const paginate = <A>(all: ReadonlyArray<A>, page: number, perPage: number): Page<A> => {
  const total = all.length
  const pages = Math.max(1, Math.ceil(total / perPage))
  return {
    items: all.slice((page - 1) * perPage, page * perPage),
    pagination: { total, page, per_page: perPage, pages, has_next: page < pages, has_prev: page > 1 }
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Optional details for a book created by {@link InventoryStore.setStock}. */
export interface SetStockOptions {
  readonly quantityTotal?: number
  readonly title?: string
  readonly price?: string
}

/**
 * The in-memory inventory. Construct with the seed (the demo catalog or a seed file) and an
 * optional clock (defaults to the wall clock) used for timestamps.
 */
export class InventoryStore {
  private readonly books = new Map<string, BookRecord>()
  private readonly records = new Map<string, Mutable<InventoryRecord>>()
  private readonly log: Array<TransactionRecord> = []

  constructor(seed: ReadonlyArray<SeedBook>, private readonly clock: () => Date = () => new Date()) {
    for (const entry of seed) {
      this.putBook(entry.bookId.toLowerCase(), entry.title, entry.price, entry.authors)
      this.putRecord(entry.bookId.toLowerCase(), entry.quantity, entry.quantityTotal ?? entry.quantity)
    }
  }

  private now(): string {
    return naiveUtc(this.clock())
  }

  private putBook(bookId: string, title: string, price: string, authors?: ReadonlyArray<string>): void {
    const now = this.now()
    this.books.set(bookId, {
      id: bookId,
      title,
      subtitle: null,
      authors: authors ?? ["Unknown"],
      genres: ["Classics"],
      description: `${title} (demo catalog of the fake inventory service)`,
      price,
      cover_image_url: `/static/images/${bookId}.jpg`,
      rating: 4.5,
      created_at: now,
      updated_at: now,
      is_active: true
    })
  }

  private putRecord(bookId: string, available: number, total: number): Mutable<InventoryRecord> {
    const now = this.now()
    const record: Mutable<InventoryRecord> = {
      id: randomUUID(),
      book_id: bookId,
      quantity_available: available,
      quantity_total: total,
      reorder_point: defaultReorderPoint,
      created_at: now,
      updated_at: now
    }
    this.records.set(bookId, record)
    return record
  }

  /**
   * The stock view for `bookId` (canonical lower-case UUID), or undefined for the contract's 404.
   * Like the real service, a record without a catalog book (one created by a positive adjust of
   * an unknown id) is also not found here.
   */
  stock(bookId: string): StockView | undefined {
    const record = this.records.get(bookId)
    const book = this.books.get(bookId)
    if (record === undefined || book === undefined) return undefined
    return { inventory: { ...record }, book }
  }

  /** Page `page` (1-based) of `perPage` stock views, in catalog order; records without a book are left out. */
  list(page: number, perPage: number): Page<StockView> {
    const all: Array<StockView> = []
    for (const bookId of this.records.keys()) {
      const view = this.stock(bookId)
      if (view !== undefined) all.push(view)
    }
    return paginate(all, page, perPage)
  }

  /**
   * Applies `change` to both `quantity_available` and `quantity_total` of `bookId` and records a
   * transaction carrying `notes`, in one synchronous step (atomic). Rules from the contract: a
   * result below zero changes nothing (`WouldGoNegative`); an unknown book gets a new record
   * (a negative change on it is `WouldGoNegative`); the type is `stock_out` for a negative change,
   * `stock_in` for a positive one, `adjustment` for 0.
   */
  adjust(bookId: string, change: number, notes: string | null): AdjustOutcome {
    const existing = this.records.get(bookId)
    const available = existing?.quantity_available ?? 0
    const total = existing?.quantity_total ?? 0
    if (available + change < 0 || total + change < 0) {
      return { _tag: "WouldGoNegative", quantityAvailable: available }
    }
    const record = existing ?? this.putRecord(bookId, 0, 0)
    const timestamp = this.now()
    record.quantity_available = available + change
    record.quantity_total = total + change
    record.updated_at = timestamp
    const transaction: TransactionRecord = {
      id: randomUUID(),
      book_id: bookId,
      transaction_type: change < 0 ? "stock_out" : change > 0 ? "stock_in" : "adjustment",
      quantity_change: change,
      notes,
      timestamp
    }
    this.log.push(transaction)
    return { _tag: "Applied", transaction }
  }

  /** The transactions of `bookId` (or of all books when undefined), newest first. */
  transactionsFor(bookId?: string): ReadonlyArray<TransactionRecord> {
    const newestFirst: Array<TransactionRecord> = []
    for (let i = this.log.length - 1; i >= 0; i--) {
      const t = this.log[i]
      if (t !== undefined && (bookId === undefined || t.book_id === bookId)) newestFirst.push(t)
    }
    return newestFirst
  }

  /** Page `page` (1-based, `perPage` items) of {@link transactionsFor}, newest first. */
  transactions(bookId: string | undefined, page: number, perPage: number): Page<TransactionRecord> {
    return paginate(this.transactionsFor(bookId), page, perPage)
  }

  /**
   * Test set-up, not part of the contract: sets `quantity_available` of `bookId` to `quantity` and
   * `quantity_total` to `options.quantityTotal` (default: `quantity`), without recording a
   * transaction. An unknown id gets a record and a catalog book (title and price from `options`,
   * defaults "Fake book <id>" and "10.00") so GET finds it.
   */
  setStock(bookId: string, quantity: number, options: SetStockOptions = {}): InventoryRecord {
    if (!this.books.has(bookId)) {
      this.putBook(bookId, options.title ?? `Fake book ${bookId.slice(0, 8)}`, options.price ?? "10.00")
    }
    const total = options.quantityTotal ?? quantity
    const record = this.records.get(bookId)
    if (record === undefined) return { ...this.putRecord(bookId, quantity, total) }
    record.quantity_available = quantity
    record.quantity_total = total
    record.updated_at = this.now()
    return { ...record }
  }

  /** `quantity_available` of `bookId`, or undefined when it has no record (a test convenience). */
  available(bookId: string): number | undefined {
    return this.records.get(bookId.toLowerCase())?.quantity_available
  }
}
