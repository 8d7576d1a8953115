import FlushCoalescing
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// Counts the flushes that reach the channel's head.
final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var flushes = 0

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

@Suite struct FlushCoalescerTests {
    /// Channels on one embedded loop, each with a flush counter; `run()` on the loop ends the tick.
    /// `@unchecked Sendable`: an embedded loop runs everything on the test's thread.
    final class Fixture: @unchecked Sendable {
        let loop = EmbeddedEventLoop()
        let coalescer: FlushCoalescer
        var channels: [EmbeddedChannel] = []
        var counters: [FlushCounter] = []

        init(channels count: Int) throws {
            coalescer = FlushCoalescer(eventLoop: loop, logger: Logger(label: "test"))
            for _ in 0..<count {
                let counter = FlushCounter()
                channels.append(EmbeddedChannel(handler: counter, loop: loop))
                counters.append(counter)
            }
        }

        func write(_ text: String, on index: Int) {
            channels[index].write(ByteBuffer(string: text), promise: nil)
        }

        func flushed(_ index: Int) throws -> String {
            var text = ""
            while let chunk = try channels[index].readOutbound(as: ByteBuffer.self) { text += String(buffer: chunk) }
            return text
        }
    }

    @Test func flushesAskedDuringATickLeaveWhenItEnds() throws {
        let fixture = try Fixture(channels: 2)
        fixture.write("one", on: 0)
        fixture.coalescer.flushAtEndOfTick(fixture.channels[0])
        fixture.write("two", on: 1)
        fixture.coalescer.flushAtEndOfTick(fixture.channels[1])
        #expect(try fixture.flushed(0).isEmpty, "nothing leaves before the tick ends")
        #expect(try fixture.flushed(1).isEmpty)
        fixture.loop.run()
        #expect(try fixture.flushed(0) == "one")
        #expect(try fixture.flushed(1) == "two")
    }

    @Test func aConnectionAskingAgainAndAgainIsFlushedOnce() throws {
        let fixture = try Fixture(channels: 1)
        for answer in ["a", "b", "c"] {
            fixture.write(answer, on: 0)
            fixture.coalescer.flushAtEndOfTick(fixture.channels[0])
        }
        fixture.loop.run()
        #expect(try fixture.flushed(0) == "abc", "pipelined answers leave together")
        #expect(fixture.counters[0].flushes == 1)
    }

    @Test func aFlushAskedWhileFlushingLeavesInTheSameTick() throws {
        let fixture = try Fixture(channels: 2)
        fixture.write("first", on: 0)
        fixture.channels[0].write(ByteBuffer(string: "!")).whenComplete { _ in
            // A completed write lets another connection answer, as a finished upload or proxied answer would.
            fixture.write("second", on: 1)
            fixture.coalescer.flushAtEndOfTick(fixture.channels[1])
        }
        fixture.coalescer.flushAtEndOfTick(fixture.channels[0])
        fixture.loop.run()
        #expect(try fixture.flushed(0) == "first!")
        #expect(try fixture.flushed(1) == "second")
    }

    @Test func pastTheBoundAChannelIsFlushedAtOnce() throws {
        let fixture = try Fixture(channels: 2)
        // The same two channels alternating never count as a repeat, so the list fills.
        for index in 0..<FlushCoalescer.maxPending {
            fixture.coalescer.flushAtEndOfTick(fixture.channels[index % 2])
        }
        fixture.write("over", on: 0)
        fixture.coalescer.flushAtEndOfTick(fixture.channels[0])
        #expect(try fixture.flushed(0) == "over", "over the bound, nothing waits")
        fixture.loop.run()
        #expect(fixture.counters[0].flushes == FlushCoalescer.maxPending / 2 + 1)
    }
}
