import InterKernel
import Testing

@Suite struct LayoutTests {
    @Test func twoClustersInOneMebibyteUseMaximumSlots() throws {
        let layout = try #require(ChannelLayout(clusterCount: 2, regionSize: 1 << 20))
        #expect(layout.slotsPerRing == ChannelLayout.maxSlotsPerRing)
        #expect(layout.ringCount == 2)
        #expect(layout.usedSize <= 1 << 20)
        #expect(layout.ringsOffset == Int(ChannelControl.size))
    }

    @Test func slotsShrinkToFitAndFailWhenTwoDoNotFit() throws {
        // 8 clusters: 56 rings.
        for size in [1 << 20, 1 << 18, 1 << 16, 16 << 10] {
            if let layout = ChannelLayout(clusterCount: 8, regionSize: size) {
                #expect(layout.usedSize <= size)
                #expect(layout.slotsPerRing & (layout.slotsPerRing - 1) == 0)
                // The next power of two would not have fitted (or is above the cap).
                let bigger = layout.slotsPerRing * 2
                #expect(bigger > ChannelLayout.maxSlotsPerRing
                        || ChannelLayout.requiredSize(clusterCount: 8, slotsPerRing: bigger) > size)
            } else {
                #expect(ChannelLayout.requiredSize(clusterCount: 8, slotsPerRing: 2) > size)
            }
        }
        #expect(ChannelLayout(clusterCount: 8, regionSize: 4096) == nil)
        #expect(ChannelLayout(clusterCount: 0, regionSize: 1 << 20) == nil)
        #expect(ChannelLayout(clusterCount: 256, regionSize: 1 << 30) == nil)
        #expect(ChannelLayout(clusterCount: 2, slotsPerRing: 3) == nil)
        #expect(ChannelLayout(clusterCount: 2, slotsPerRing: 1) == nil)
        #expect(ChannelLayout(clusterCount: 2, slotsPerRing: 512) == nil)
    }

    @Test func oneClusterHasNoRings() throws {
        let layout = try #require(ChannelLayout(clusterCount: 1, regionSize: 8192))
        #expect(layout.ringCount == 0)
    }

    @Test(arguments: [2, 3, 4, 5, 8])
    func ringsAreDisjointAlignedAndIndexedOneToOne(clusters: Int) throws {
        let layout = try #require(ChannelLayout(clusterCount: clusters, regionSize: 1 << 20))
        var seen = Set<Int>()
        var spans: [(Int, Int)] = []
        for from in 0..<clusters {
            for to in 0..<clusters where to != from {
                let index = layout.ringIndex(from: from, to: to)
                #expect(index >= 0 && index < layout.ringCount)
                #expect(seen.insert(index).inserted)
                #expect(layout.ringPair(index) == (from, to))
                let offset = layout.ringOffset(from: from, to: to)
                #expect(offset % ChannelLayout.pageSize == 0)
                #expect(layout.ringStride % ChannelLayout.pageSize == 0)
                #expect(layout.wakeFlagOffset(from: from, to: to) == offset + 64)
                #expect(offset >= layout.ringsOffset)
                #expect(layout.slotOffset(from: from, to: to, slot: layout.slotsPerRing - 1) + 64
                        <= offset + layout.ringStride)
                spans.append((offset, offset + layout.ringStride))
            }
        }
        spans.sort { $0.0 < $1.0 }
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(a.1 <= b.0) }
        #expect(spans.last!.1 == layout.usedSize)
    }

    /// What the loader's isolation walk allows a cluster to map: the control
    /// page and the rings it is on, page by page; nothing of a ring between
    /// two others, nothing straddling two rings, nothing past the rings.
    @Test(arguments: [2, 3, 5])
    func aClusterMayMapOnlyTheControlPageAndItsOwnRings(clusters: Int) throws {
        let layout = try #require(ChannelLayout(clusterCount: clusters, regionSize: 1 << 20))
        let page = ChannelLayout.pageSize
        for me in 0..<clusters {
            #expect(layout.clusterMayMap(me, offset: 0, size: page))
            var offset = layout.ringsOffset
            while offset < layout.usedSize {
                let pair = layout.ringPair((offset - layout.ringsOffset) / layout.ringStride)
                #expect(layout.clusterMayMap(me, offset: offset, size: page) == (pair.from == me || pair.to == me))
                offset += page
            }
            #expect(!layout.clusterMayMap(me, offset: layout.usedSize, size: page))
            #expect(!layout.clusterMayMap(me, offset: 0, size: 2 * page))
            #expect(!layout.clusterMayMap(me, offset: layout.ringsOffset, size: 2 * layout.ringStride))
            #expect(!layout.clusterMayMap(me, offset: -page, size: page))
            #expect(!layout.clusterMayMap(me, offset: Int.max - 10, size: page))
        }
    }

    @Test func layoutIsAPureFunction() {
        #expect(ChannelLayout(clusterCount: 4, regionSize: 1 << 20) == ChannelLayout(clusterCount: 4, regionSize: 1 << 20))
        #expect(ChannelLayout(clusterCount: 4, regionSize: 1 << 20) != ChannelLayout(clusterCount: 4, regionSize: 1 << 19))
    }
}

@Suite struct HeaderTests {
    @Test func fieldsRoundTrip() {
        let h = MessageHeader(kind: 4, sender: 200, length: 7, sequence: 0xDEAD_BEEF)
        #expect(h.kind == 4 && h.sender == 200 && h.length == 7 && h.sequence == 0xDEAD_BEEF)
        #expect(h.reserved == 0 && h.isIntact && h.raw != 0)
        #expect(MessageHeader(kind: 0, sender: 0, length: 0, sequence: 0).raw != 0)
    }

    @Test func everySingleBitFlipIsCaught() {
        let h = MessageHeader(kind: 1, sender: 3, length: 2, sequence: 12345)
        for bit in 0..<64 {
            #expect(!MessageHeader(raw: h.raw ^ (1 << UInt64(bit))).isIntact, "bit \(bit)")
        }
    }
}
