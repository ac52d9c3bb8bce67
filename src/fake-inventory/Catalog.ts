/**
 * The fake inventory's seed data: the built-in demo catalog, and the schema of a seed file
 * (`FAKE_INVENTORY_SEED`) that replaces it.
 */
import { Schema } from "effect"

/**
 * A decimal price as the inventory serialises it: a string with at most two fraction digits,
 * e.g. "16.99" (INVENTORY_CONTRACT.md: `book.price` is a JSON string).
 */
export const Price = Schema.String.pipe(
  Schema.pattern(/^\d{1,7}(\.\d{1,2})?$/, { message: () => "price must be a decimal string like \"16.99\"" })
)

/**
 * One book to seed: its id, title, price (decimal string) and the copies available.
 * `quantityTotal` (optional, at least `quantity`) models the demo data where some books have
 * `quantity_available` below `quantity_total`.
 */
export const SeedBook = Schema.Struct({
  bookId: Schema.UUID,
  title: Schema.String.pipe(Schema.minLength(1)),
  price: Price,
  quantity: Schema.Int.pipe(Schema.nonNegative()),
  quantityTotal: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  authors: Schema.optional(Schema.Array(Schema.String))
}).pipe(
  Schema.filter((book) =>
    book.quantityTotal === undefined || book.quantityTotal >= book.quantity
      ? undefined
      : "quantityTotal must be at least quantity"
  )
)

/** A seed entry after decoding (see {@link SeedBook}). */
export type SeedBook = typeof SeedBook.Type

/** The seed file's content: a JSON array of {@link SeedBook}. */
export const SeedFile = Schema.parseJson(Schema.Array(SeedBook))

/**
 * The built-in demo catalog: 20 books with fixed ids so tests and scripts can name them.
 * Edge cases on purpose: one book out of stock, one with a single copy (for races), and a few
 * with fewer available than total, as in the real demo data (INVENTORY_CONTRACT.md).
 */
export const demoCatalog: ReadonlyArray<SeedBook> = [
  { bookId: "289f3439-3a2e-49a9-b447-eb6a95922a20", title: "Pride and Prejudice", price: "16.99", quantity: 12, authors: ["Jane Austen"] },
  { bookId: "649d8c29-dc58-4eac-87aa-de382b4eb388", title: "Moby-Dick", price: "18.50", quantity: 7, authors: ["Herman Melville"] },
  { bookId: "6b96d9f3-7091-4e87-8c64-347f666c9556", title: "Frankenstein", price: "12.99", quantity: 25, quantityTotal: 30, authors: ["Mary Shelley"] },
  { bookId: "01bde565-e858-40c0-a7e0-7ed874663db9", title: "The Odyssey", price: "21.00", quantity: 4, authors: ["Homer"] },
  { bookId: "d598042d-d5a1-4333-86ed-a8fd59ec7b0f", title: "Middlemarch", price: "19.95", quantity: 9, authors: ["George Eliot"] },
  { bookId: "bcd901d5-26c1-4f88-b52e-338d464e8698", title: "Jane Eyre", price: "14.25", quantity: 15, authors: ["Charlotte Brontë"] },
  { bookId: "545c1bc8-ca55-4b3a-a908-ebc4cef32629", title: "Wuthering Heights", price: "13.75", quantity: 1, authors: ["Emily Brontë"] },
  { bookId: "4a6626ff-872e-4e33-9883-50745689a10a", title: "Great Expectations", price: "15.40", quantity: 0, quantityTotal: 3, authors: ["Charles Dickens"] },
  { bookId: "8d834cf8-c971-4115-86a8-94df5917dd66", title: "Anna Karenina", price: "22.99", quantity: 6, authors: ["Leo Tolstoy"] },
  { bookId: "c2838713-7e9a-474b-9932-0b867c123883", title: "Crime and Punishment", price: "17.49", quantity: 11, authors: ["Fyodor Dostoevsky"] },
  { bookId: "27d50077-f081-40b7-a27f-7fbd8dd3cbe2", title: "Don Quixote", price: "24.00", quantity: 3, authors: ["Miguel de Cervantes"] },
  { bookId: "f4408ada-4014-4f7b-b5cc-21ffa654d4d8", title: "The Count of Monte Cristo", price: "20.10", quantity: 8, quantityTotal: 10, authors: ["Alexandre Dumas"] },
  { bookId: "fef333e1-b128-4762-a099-9c4d837c44b2", title: "Les Misérables", price: "23.45", quantity: 5, authors: ["Victor Hugo"] },
  { bookId: "44c36314-c43a-46b0-bfb0-24c5d0eedc50", title: "The Brothers Karamazov", price: "21.99", quantity: 2, authors: ["Fyodor Dostoevsky"] },
  { bookId: "59d1d2c5-f4ad-4f05-9794-ec6bacd62a59", title: "Dracula", price: "11.99", quantity: 30, authors: ["Bram Stoker"] },
  { bookId: "44d569d9-f708-42b4-9196-9151de9de648", title: "Little Women", price: "10.50", quantity: 14, authors: ["Louisa May Alcott"] },
  { bookId: "4152428e-b5b2-45f0-921f-6ae3b842486e", title: "The Scarlet Letter", price: "9.99", quantity: 20, quantityTotal: 22, authors: ["Nathaniel Hawthorne"] },
  { bookId: "92e3947d-8970-4102-a094-1dcead4e0680", title: "Emma", price: "16.00", quantity: 10, authors: ["Jane Austen"] },
  { bookId: "71702532-b748-4eca-8e2e-0cc4a0ffe7c4", title: "The Picture of Dorian Gray", price: "12.00", quantity: 13, authors: ["Oscar Wilde"] },
  { bookId: "d121a725-d6d5-4e0c-8bd7-f9e717a5fd75", title: "Walden", price: "8.75", quantity: 50, authors: ["Henry David Thoreau"] }
]
