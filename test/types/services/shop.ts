// The same service described by an interface instead of its module type.
export function price(sku: string): number {
  return sku.length * 100;
}
export async function order(sku: string, count: number) {
  return { sku, count, cents: price(sku) * count };
}
