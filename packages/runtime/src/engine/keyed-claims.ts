/** How many holders each key has; a claim ends once, however often its release is called. */
export class KeyedClaims<K> {
  private readonly counts = new Map<K, number>();

  has(key: K): boolean {
    return this.counts.has(key);
  }

  claim(key: K): () => void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }

  clear(): void {
    this.counts.clear();
  }
}
