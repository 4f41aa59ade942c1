// Decides which API serves each invoice part: the v1 line-item API or a Microsoft Graph v2 export (ref §7).
// The cut-over months are settings because Microsoft moved them three times.
import type { Settings } from '../config.js';

export type PartRoute =
  | { api: 'v1'; reason: string }
  | { api: 'v2'; v2Kind: 'reconciliation' | 'usage'; reason: string }
  | { api: 'none'; reason: string };

export interface RoutableInvoice {
  id: string;
  invoiceType?: unknown;
}
export interface RoutablePart {
  provider: string;
  lineItemType: string;
  supported?: boolean;
  reason?: string;
}

const isLegacy = (invoice: RoutableInvoice) =>
  /^D/i.test(invoice.id) ||
  String(invoice.invoiceType ?? '')
    .replace(/_/g, '')
    .toLowerCase() === 'recurring';

/** `billingPeriod` is `YYYY-MM`; string comparison orders months correctly. */
export function routePart(
  invoice: RoutableInvoice,
  part: RoutablePart,
  billingPeriod: string,
  settings: Pick<Settings, 'V2_RECONCILIATION_FROM' | 'V2_USAGE_FROM'>,
): PartRoute {
  if (part.supported === false) return { api: 'none', reason: part.reason ?? 'no known request for this part' };
  if (isLegacy(invoice)) return { api: 'v1', reason: 'legacy invoice: v1 only (v2 serves new commerce only)' };
  if (part.provider === 'office' || part.provider === 'azure') {
    return { api: 'v1', reason: `${part.provider} parts are legacy: v1 only` };
  }
  if (part.lineItemType === 'billing') {
    return billingPeriod >= settings.V2_RECONCILIATION_FROM
      ? {
          api: 'v2',
          v2Kind: 'reconciliation',
          reason: `billing period ${billingPeriod} >= V2_RECONCILIATION_FROM ${settings.V2_RECONCILIATION_FROM}`,
        }
      : {
          api: 'v1',
          reason: `billing period ${billingPeriod} < V2_RECONCILIATION_FROM ${settings.V2_RECONCILIATION_FROM}`,
        };
  }
  if (part.lineItemType === 'usage') {
    return billingPeriod >= settings.V2_USAGE_FROM
      ? {
          api: 'v2',
          v2Kind: 'usage',
          reason: `billing period ${billingPeriod} >= V2_USAGE_FROM ${settings.V2_USAGE_FROM}`,
        }
      : { api: 'v1', reason: `billing period ${billingPeriod} < V2_USAGE_FROM ${settings.V2_USAGE_FROM}` };
  }
  return { api: 'v1', reason: 'unknown line-item type: v1 is the only API that may know it' };
}
