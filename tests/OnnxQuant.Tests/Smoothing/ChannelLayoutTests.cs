using OnnxQuant.Smoothing;

namespace OnnxQuant.Tests.Smoothing;

public class ChannelLayoutTests
{
    // Attention's V path: [B,S,C] -> [B,S,H,D] -> [B,H,S,D] -> P·V -> [B,S,H,D] -> [B,S,C] keeps every channel in place.
    [Fact]
    public void AttentionValuePathMapsEveryChannelToItself()
    {
        const int H = 3, D = 4, C = H * D;
        var layout = ChannelLayout.LinearOutput(C)
            .Reshape([null, null, H, D])!
            .Transpose([0, 2, 1, 3])!
            .AsMatMulRightOperand()!
            .Transpose([0, 2, 1, 3])!
            .Reshape([0, 0, -1])!;
        Assert.True(layout.IsSingleTrailingAxis);
        Assert.Equal(Enumerable.Range(0, C), layout.Order);
    }

    // Swapping heads and head_dim before merging puts channel (h, d) at position d*H + h.
    [Fact]
    public void TransposedMergeGivesThePermutedOrder()
    {
        const int H = 2, D = 3, C = H * D;
        var layout = ChannelLayout.LinearOutput(C)
            .Reshape([1, 5, H, D])!
            .Transpose([0, 1, 3, 2])!
            .Reshape([1, 5, C])!;
        Assert.True(layout.IsSingleTrailingAxis);
        var expected = new int[C];
        for (int d = 0; d < D; d++)
            for (int h = 0; h < H; h++)
                expected[d * H + h] = h * D + d;
        Assert.Equal(expected, layout.Order);
    }

    [Fact]
    public void ReshapeThatSplitsChannelsAcrossTokensIsRefused()
    {
        // [.., 8] -> [.., 2S, 4]: the trailing 4 is not the whole channel block and the entry before it is not constant.
        Assert.Null(ChannelLayout.LinearOutput(8).Reshape([null, null, 4]));
        // A constant-rank reshape whose trailing entries overshoot C.
        Assert.Null(ChannelLayout.LinearOutput(8).Reshape([1, 3, 16]));
    }

    [Fact]
    public void ContractingOverChannelsIsRefused()
    {
        // After [B,S,H,D] -> [B,H,D,S] the MatMul would sum over D (a channel axis).
        var layout = ChannelLayout.LinearOutput(12).Reshape([null, null, 3, 4])!.Transpose([0, 2, 3, 1])!;
        Assert.Null(layout.AsMatMulRightOperand());
    }

    [Fact]
    public void TransposeNeedsAKnownRank()
    {
        Assert.Null(ChannelLayout.LinearOutput(8).Transpose([1, 0]));
        Assert.Null(ChannelLayout.LinearOutput(8).Reshape([null, 2, 4])!.Transpose([0, 1]));
    }

    [Fact]
    public void ChannelsSplitOverNonTrailingAxesCannotBeReshaped()
    {
        var split = ChannelLayout.LinearOutput(12).Reshape([null, null, 3, 4])!.Transpose([0, 2, 1, 3])!; // [B,H,S,D]
        Assert.False(split.IsSingleTrailingAxis);
        Assert.Null(split.Reshape([null, 12]));
    }
}
