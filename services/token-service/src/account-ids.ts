import { createHmac } from 'node:crypto'

/**
 * Google accounts by a keyed hash of their stable OpenID subject (`sub`): enough to tell one account
 * from another and to keep one FitStream user per account, while Redis never holds the id itself
 * (a hash without the key cannot be matched against a known Google id).
 */
export class AccountIds {
  private readonly key: Buffer

  constructor(key: string) {
    this.key = createHmac('sha256', 'fitstream google account id').update(key).digest()
  }

  hash(subject: string): string {
    return createHmac('sha256', this.key).update(`google-sub:${subject}`).digest('base64url')
  }
}
