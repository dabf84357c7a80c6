/// A first-in, first-out queue that allocates nothing until its first element and keeps its storage
/// once drained, for queues that fill and empty in bursts (a connection's events and frames).
///
/// Unlike NIO's `CircularBuffer`, an empty `FIFO` holds no storage at all, so an idle connection
/// pays nothing for its queues. Taking an element releases the queue's reference to it, so a taken
/// payload is uniquely referenced by the caller (no copy-on-write when it is mutated).
struct FIFO<Element> {
    private var storage: [Element?] = []
    private var head = 0

    /// Whether there is no element to take.
    var isEmpty: Bool { head == storage.count }

    /// Adds `element` at the back.
    mutating func append(_ element: Element) {
        storage.append(element)
    }

    /// Takes the element at the front, or nil when empty.
    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head].take()
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }
}
