import { NotFoundError, ValidationError } from "../errors.ts";
import { DEFAULT_PRODUCT_BINDING, type ProductBinding, productBindingSchema } from "../registry/model.ts";

/** Writes a product's binding setting (one conditional write: the product must exist). */
export interface ProductBindingStore {
  /** False when there is no such product. */
  setProductBinding(productKey: string, binding: ProductBinding): Promise<boolean>;
}

/**
 * `onramp products update --binding-ownership ... --binding-token-ttl ...`: merges the change into
 * the product's setting (the default when it has none) and writes it. Applies to binds and reports
 * from then on (functions cache a product read for a short while); existing bindings stay.
 */
export async function updateProductBinding(
  deps: {
    registry: { getProduct(productKey: string): Promise<{ binding?: ProductBinding } | undefined> };
    products: ProductBindingStore;
  },
  productKey: string,
  change: Partial<ProductBinding>,
): Promise<ProductBinding> {
  const product = await deps.registry.getProduct(productKey);
  if (!product) throw new NotFoundError(`No product ${productKey}.`);
  const parsed = productBindingSchema.safeParse({
    ...(product.binding ?? DEFAULT_PRODUCT_BINDING),
    ...change,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError(`Invalid product binding.${String(issue.path[0])}: ${issue.message}`);
  }
  if (!(await deps.products.setProductBinding(productKey, parsed.data))) {
    throw new NotFoundError(`No product ${productKey}.`);
  }
  return parsed.data;
}
