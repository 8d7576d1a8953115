/// Finds which of many literal strings occur in a text, in one pass (Aho–Corasick, as a table-driven automaton over
/// the bytes that occur in the literals; every other byte is one class that leads back to the start).
///
/// Built once from the patterns' required literals; read-only afterwards, so all threads share it.
public struct LiteralScanner: Sendable {
    /// Byte → class (0: a byte no literal holds).
    private let classes: [UInt8]
    private let classCount: Int
    /// `transitions[state * classCount + class]`: the next state, with ``hasOutput`` set when literals end there
    /// (so the scan reads the output table only then: one table load a byte).
    private let transitions: [UInt32]
    static let hasOutput: UInt32 = 1 << 31
    /// The literals (by index) that end at each state, its suffixes' included: state `s`'s are
    /// `outputs[outputStarts[s] ..< outputStarts[s + 1]]` (flat, so the scan touches no nested array).
    private let outputs: [Int32]
    private let outputStarts: [Int32]
    public let literalCount: Int

    /// `literals` are matched as given (lower-case them, and the text, for a case-insensitive scan).
    public init(literals: [[UInt8]]) {
        literalCount = literals.count
        var classes = [UInt8](repeating: 0, count: 256)
        var next: UInt8 = 1
        for literal in literals {
            for byte in literal where classes[Int(byte)] == 0 {
                classes[Int(byte)] = next
                next = next == 255 ? 255 : next + 1
            }
        }
        let count = Int(next)
        // The trie.
        var children: [[Int32]] = [[Int32](repeating: -1, count: count)]
        var outputs: [[Int32]] = [[]]
        for (number, literal) in literals.enumerated() where !literal.isEmpty {
            var state = 0
            for byte in literal {
                let symbol = Int(classes[Int(byte)])
                if children[state][symbol] < 0 {
                    children[state][symbol] = Int32(children.count)
                    children.append([Int32](repeating: -1, count: count))
                    outputs.append([])
                }
                state = Int(children[state][symbol])
            }
            outputs[state].append(Int32(number))
        }
        // Failure links, breadth first, folded into a complete transition table.
        var transitions = [Int32](repeating: 0, count: children.count * count)
        var failure = [Int32](repeating: 0, count: children.count)
        var queue: [Int] = []
        for symbol in 0..<count {
            let child = children[0][symbol]
            if child >= 0 {
                transitions[symbol] = child
                queue.append(Int(child))
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            outputs[state] += outputs[Int(failure[state])]
            for symbol in 0..<count {
                let child = children[state][symbol]
                let fallback = transitions[Int(failure[state]) * count + symbol]
                if child >= 0 {
                    failure[Int(child)] = state == 0 ? 0 : fallback
                    transitions[state * count + symbol] = child
                    queue.append(Int(child))
                } else {
                    transitions[state * count + symbol] = fallback
                }
            }
        }
        // A literal's children were queued after it, so its failure target's outputs were complete when copied.
        self.classes = classes
        classCount = count
        self.transitions = transitions.map { next in
            UInt32(next) | (outputs[Int(next)].isEmpty ? 0 : Self.hasOutput)
        }
        var flat: [Int32] = []
        var starts: [Int32] = [0]
        for list in outputs {
            flat += list
            starts.append(Int32(flat.count))
        }
        self.outputs = flat
        outputStarts = starts
    }

    /// Calls `found` with the index of every literal occurring in `text` (once per occurrence).
    public func scan(_ text: UnsafeRawBufferPointer, _ found: (Int) -> Void) {
        var state = 0
        let classCount = self.classCount
        classes.withUnsafeBufferPointer { classes in
            transitions.withUnsafeBufferPointer { transitions in
                outputStarts.withUnsafeBufferPointer { starts in
                    outputs.withUnsafeBufferPointer { outputs in
                        for byte in text {
                            let next = transitions[state &* classCount &+ Int(classes[Int(byte)])]
                            state = Int(next & ~Self.hasOutput)
                            guard next & Self.hasOutput != 0 else { continue }
                            for index in Int(starts[state])..<Int(starts[state &+ 1]) { found(Int(outputs[index])) }
                        }
                    }
                }
            }
        }
    }
}
