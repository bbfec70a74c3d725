namespace OnnxQuant.Smoothing;

/// <summary>
/// Where a linear's output channels are inside a tensor derived from it by reshapes and transposes. The channels of the
/// linear (C of them) are split over one or more channel axes; all other axes carry tokens (batch, sequence, heads of
/// another tensor...). <see cref="Order"/> says, for each position in row-major order over the channel axes, which
/// original channel sits there. Only trailing axes are known when the rank is not.
/// </summary>
internal sealed class ChannelLayout
{
    /// <summary>An axis that does not hold channels.</summary>
    public const int Token = -1;

    private ChannelLayout(bool rankKnown, int[] axes, int[] order)
    {
        RankKnown = rankKnown;
        Axes = axes;
        Order = order;
    }

    /// <summary>False while the number of leading token axes is unknown (before the first Reshape).</summary>
    public bool RankKnown { get; }

    /// <summary>Per axis: <see cref="Token"/>, or the size of a channel axis. Without a known rank, the trailing axes only.</summary>
    public int[] Axes { get; }

    /// <summary>Original channel at each row-major position over the channel axes.</summary>
    public int[] Order { get; }

    public int Channels => Order.Length;

    /// <summary>A linear's output: unknown leading token axes, then its C channels in order.</summary>
    public static ChannelLayout LinearOutput(int channels) =>
        new(false, [channels], Enumerable.Range(0, channels).ToArray());

    /// <summary>True when the channels are one trailing axis (what a consumer linear reads).</summary>
    public bool IsSingleTrailingAxis => Axes.Length >= 1 && Axes[^1] == Channels && Axes.Take(Axes.Length - 1).All(a => a == Token);

    /// <summary>True when the channels sit on trailing, contiguous axes (a Reshape then keeps their flat order).</summary>
    private bool ChannelsTrailing
    {
        get
        {
            int first = Array.FindIndex(Axes, a => a != Token);
            return first >= 0 && Axes.Skip(first).All(a => a != Token);
        }
    }

    private int TrailingTokenCount => Array.FindIndex(Axes, a => a != Token);

    public ChannelLayout WithUnknownRank() => new(false, Axes, Order);

    /// <summary>
    /// After a Reshape to <paramref name="shape"/> (entries: a constant, or null when computed at run time). Row-major order
    /// is kept, so a trailing block of C elements in the input is the trailing block in the output when the output's
    /// trailing entries multiply to C. Null when that cannot be shown.
    /// </summary>
    public ChannelLayout? Reshape(IReadOnlyList<long?> shape)
    {
        if (!ChannelsTrailing)
            return null;
        long product = 1;
        int k = 0;
        for (int i = shape.Count - 1; i >= 0 && product < Channels; i--)
        {
            if (shape[i] is not { } d || d <= 0)
                break;
            product *= d;
            k++;
        }
        int[] channelSizes;
        if (product == Channels && k > 0)
            channelSizes = shape.Skip(shape.Count - k).Select(d => (int)d!.Value).ToArray();
        else if (shape.Count >= 1 && shape[^1] == -1 && RankKnown && shape.Count - 1 == TrailingTokenCount
                 && shape.Take(shape.Count - 1).All(d => d is null || d == 0))
            // [0, 0, -1] (or run-time leading sizes): the token axes are copied, -1 is the whole channel block.
            channelSizes = [Channels];
        else
            return null;
        var axes = Enumerable.Repeat(Token, shape.Count - channelSizes.Length).Concat(channelSizes).ToArray();
        return new ChannelLayout(true, axes, Order);
    }

    /// <summary>After a Transpose by <paramref name="perm"/> (output axis i is input axis perm[i]); null without a known rank.</summary>
    public ChannelLayout? Transpose(IReadOnlyList<long>? perm)
    {
        if (!RankKnown)
            return null;
        int rank = Axes.Length;
        int[] p = perm is null ? Enumerable.Range(0, rank).Reverse().ToArray() : perm.Select(v => (int)v).ToArray();
        if (p.Length != rank || p.Distinct().Count() != rank || p.Any(v => v < 0 || v >= rank))
            return null;
        var axes = p.Select(i => Axes[i]).ToArray();
        int[] oldChannelAxes = Enumerable.Range(0, rank).Where(i => Axes[i] != Token).ToArray();
        int[] newChannelAxes = p.Where(i => Axes[i] != Token).ToArray(); // old axis indexes, in their new order
        if (oldChannelAxes.SequenceEqual(newChannelAxes))
            return new ChannelLayout(true, axes, Order);
        return new ChannelLayout(true, axes, Permute(oldChannelAxes, newChannelAxes));
    }

    // New flat position q -> multi-index over the new axis order -> old flat position.
    private int[] Permute(int[] oldAxes, int[] newAxes)
    {
        var oldStride = new Dictionary<int, int>();
        int stride = 1;
        for (int i = oldAxes.Length - 1; i >= 0; i--)
        {
            oldStride[oldAxes[i]] = stride;
            stride *= Axes[oldAxes[i]];
        }
        var order = new int[Channels];
        var index = new int[newAxes.Length];
        for (int q = 0; q < Channels; q++)
        {
            int old = 0;
            for (int a = 0; a < newAxes.Length; a++)
                old += index[a] * oldStride[newAxes[a]];
            order[q] = Order[old];
            for (int a = newAxes.Length - 1; a >= 0; a--)
            {
                if (++index[a] < Axes[newAxes[a]])
                    break;
                index[a] = 0;
            }
        }
        return order;
    }

    /// <summary>
    /// As input B of a MatMul <c>P · V</c> whose P does not depend on V: each output element is a sum over V's axis -2
    /// weighted by P, so channels survive when that axis holds tokens. Batch axes broadcast from the right.
    /// </summary>
    public ChannelLayout? AsMatMulRightOperand() =>
        Axes.Length >= 2 && Axes[^2] == Token ? this : null;
}
