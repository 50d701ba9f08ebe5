/**
 * Who, among the users with sockets on this node, blocked whom: what delivery needs to skip a
 * blockee's messages for the blockers only. Loaded when a user's first socket binds, kept in
 * step by `blocks-changed` control events, forgotten when their last socket closes.
 */
export class LocalBlocks {
  /** `${appId}/${blockee}` → local users who blocked that user */
  private blockedBy = new Map<string, Set<string>>();
  /** `${appId}/${blocker}` → whom that local user blocked */
  private blocksOf = new Map<string, Set<string>>();

  set(appId: string, blocker: string, blockee: string, blocked: boolean): void {
    const ofKey = `${appId}/${blocker}`;
    const byKey = `${appId}/${blockee}`;
    if (blocked) {
      let of = this.blocksOf.get(ofKey);
      if (!of) this.blocksOf.set(ofKey, (of = new Set()));
      of.add(blockee);
      let by = this.blockedBy.get(byKey);
      if (!by) this.blockedBy.set(byKey, (by = new Set()));
      by.add(blocker);
    } else {
      this.blocksOf.get(ofKey)?.delete(blockee);
      const by = this.blockedBy.get(byKey);
      by?.delete(blocker);
      if (by?.size === 0) this.blockedBy.delete(byKey);
    }
  }

  /** The user's last local socket is gone. */
  forget(appId: string, userId: string): void {
    const ofKey = `${appId}/${userId}`;
    for (const blockee of this.blocksOf.get(ofKey) ?? []) this.set(appId, userId, blockee, false);
    this.blocksOf.delete(ofKey);
  }

  /** Local users who blocked `sender`, if any. */
  blockersOf(appId: string, sender: string): ReadonlySet<string> | undefined {
    return this.blockedBy.get(`${appId}/${sender}`);
  }
}
