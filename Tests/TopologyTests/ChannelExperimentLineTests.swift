import Foundation
import Testing

@testable import Topology

@Suite struct ChannelExperimentLineTests {
    let line = "cmk: channelexp 1->0 trips=100 rtt_p50=3000 rtt_p99=9000 rtt_mean=3500 stream=2000 ticks=625000 errors=0 dropped=2 freq=62500000"

    @Test func parsesAWholeLine() throws {
        let parsed = try #require(ChannelExperimentLine(line))
        #expect(parsed.from == 1 && parsed.to == 0)
        #expect(parsed.trips == 100)
        #expect(parsed.rttP50 == 3000 && parsed.rttP99 == 9000 && parsed.rttMean == 3500)
        #expect(parsed.messages == 2000 && parsed.streamTicks == 625000 && parsed.errors == 0)
        #expect(parsed.dropped == 2 && parsed.frequency == 62_500_000)
        #expect(parsed.nanoseconds(3000) == 48_000)  // 16 ns per tick
        #expect(parsed.messagesPerSecond == 200_000)  // 2000 messages in 10 ms
        #expect(ChannelExperimentLine(line + "\r") == parsed)
    }

    @Test func refusesMalformedLines() {
        let bad = [
            "cmk: channel 1->0 rtt=3000 ticks",
            line.replacingOccurrences(of: " freq=62500000", with: ""),  // truncated
            line.replacingOccurrences(of: "freq=62500000", with: "freq=0"),
            line.replacingOccurrences(of: "trips=100", with: "trips=0"),
            line.replacingOccurrences(of: "trips=100", with: "trips=x"),
            line.replacingOccurrences(of: "1->0", with: "1-0"),
            line.replacingOccurrences(of: "1->0", with: "1->1"),
            line.replacingOccurrences(of: "rtt_p50", with: "rtt_p51"),
            line.replacingOccurrences(of: "stream=2000", with: "stream=0"),
            line.replacingOccurrences(of: " dropped=2", with: ""),  // the line before dropped messages were counted
            line.replacingOccurrences(of: "errors=0 dropped=2", with: "dropped=2 errors=0"),  // out of order
            line.replacingOccurrences(of: "dropped=2", with: "dropped=-1"),
        ]
        for text in bad { #expect(ChannelExperimentLine(text) == nil, "\(text)") }
    }

    @Test func theTranscriptCollectsThem() {
        var transcript = BootTranscript()
        transcript.consume("cmk: channel 0->1 rtt=1500 ticks")
        transcript.consume(line)
        transcript.consume(line.replacingOccurrences(of: "1->0", with: "0->1"))
        transcript.consume("cmk: channelexp garbage")
        #expect(transcript.channelExperiments.map { [$0.from, $0.to] } == [[1, 0], [0, 1]])
        #expect(transcript.channelRTT[BootTranscript.Pair(0, 1)] == 1500)
    }
}
