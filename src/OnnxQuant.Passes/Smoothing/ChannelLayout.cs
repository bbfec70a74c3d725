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
    /// The general Reshape, for channels split over axes with token axes between them (a KV repeat's
    /// <c>[b, kv_heads, n_rep, s, d] -> [b, heads, s, d]</c>). Axes are matched from the right, as row-major order
    /// requires: each run of adjacent channel axes takes constant entries whose product is the run's, and each token
    /// axis one entry that is a copy (0 at its own index), inferred (-1) or computed at run time (exporters build those
    /// entries from the token axes' own sizes). Token axes left over at either end merge or split among themselves.
    /// Runs keep their order, so <see cref="Order"/> is unchanged. Null when the rank is unknown or nothing matches.
    /// </summary>
    public ChannelLayout? ReshapeAcrossTokens(IReadOnlyList<long?> shape)
    {
        if (!RankKnown)
            return null;
        var output = new int[shape.Count];
        int firstChannel = Array.FindIndex(Axes, a => a != Token);
        int i = Axes.Length - 1, j = shape.Count - 1;
        while (i >= firstChannel && firstChannel >= 0)
        {
            if (Axes[i] == Token)
            {
                // A token axis right of a channel run fixes where the run lands, so its entry must be its own size.
                if (j < 0 || shape[j] is { } d && d > 0 || shape[j] == 0 && j != i)
                    return null;
                output[j--] = Token;
                i--;
                continue;
            }
            long run = 1;
            for (; i >= 0 && Axes[i] != Token; i--)
                run *= Axes[i];
            long product = 1;
            while (product < run)
            {
                long? entry = j >= 0 && shape[j] == 0 && j < Axes.Length && Axes[j] != Token ? Axes[j] : j >= 0 ? shape[j] : null;
                if (entry is not { } e || e <= 0)
                    return null;
                product *= e;
                output[j--] = (int)e;
            }
            if (product != run)
                return null;
        }
        // What is left of the target splits the remaining token axes; channel axes must all have been placed.
        for (; j >= 0; j--)
        {
            if (shape[j] == 0 && j < Axes.Length && Axes[j] != Token)
                return null;
            output[j] = Token;
        }
        return new ChannelLayout(true, output, Order);
    }

    /// <summary>After an Unsqueeze at <paramref name="axes"/> (of the output): new axes of size 1, counted as channel axes so a repeat along them stays exact.</summary>
    public ChannelLayout? Unsqueeze(IReadOnlyList<long> axes)
    {
        if (!RankKnown)
            return null;
        int rank = Axes.Length + axes.Count;
        var inserted = axes.Select(a => (int)(a < 0 ? a + rank : a)).ToHashSet();
        if (inserted.Count != axes.Count || inserted.Any(a => a < 0 || a >= rank))
            return null;
        var result = new int[rank];
        for (int o = 0, k = 0; o < rank; o++)
            result[o] = inserted.Contains(o) ? 1 : Axes[k++];
        return new ChannelLayout(true, result, Order);
    }

    /// <summary>
    /// After an Expand to <paramref name="shape"/> (numpy broadcasting, aligned right). A size-1 channel axis expanded to
    /// a constant n repeats every channel n times along it (a KV repeat); other channel axes keep their size; token
    /// axes and new leading axes hold tokens. Null when a size-1 channel axis expands to a size only known at run time.
    /// </summary>
    public ChannelLayout? Expand(IReadOnlyList<long?> shape)
    {
        if (!RankKnown)
            return null;
        int rank = Math.Max(Axes.Length, shape.Count);
        var sizes = new int[rank];
        for (int o = 0; o < rank; o++)
        {
            int a = o - (rank - Axes.Length), e = o - (rank - shape.Count);
            long? target = e >= 0 ? shape[e] : 1;
            if (a < 0 || Axes[a] == Token)
                sizes[o] = Token;
            else if (Axes[a] > 1)
                sizes[o] = target is null || target == 1 || target == Axes[a] ? Axes[a] : -2;
            else
                sizes[o] = target is { } t && t >= 1 ? (int)t : -2;
            if (sizes[o] == -2)
                return null;
        }
        var old = new int[rank];
        for (int o = 0; o < rank; o++)
            old[o] = o < rank - Axes.Length ? Token : Axes[o - (rank - Axes.Length)];
        return Remap(old, sizes, (axis, index) => old[axis] == 1 ? 0 : index);
    }

    /// <summary>
    /// After a Tile by <paramref name="repeats"/> (or a Concat of copies along one axis): channel axis a of size c
    /// becomes c · repeats[a], position i holding what position i mod c held. Token axes may repeat by anything (null:
    /// known at run time only). Null without a known rank or when a channel axis repeats by an unknown count.
    /// </summary>
    public ChannelLayout? Tile(IReadOnlyList<long?> repeats)
    {
        if (!RankKnown || repeats.Count != Axes.Length)
            return null;
        var sizes = new int[Axes.Length];
        for (int a = 0; a < Axes.Length; a++)
        {
            if (Axes[a] == Token)
                sizes[a] = Token;
            else if (repeats[a] is { } r && r >= 1)
                sizes[a] = (int)(Axes[a] * r);
            else
                return null;
        }
        return Remap(Axes, sizes, (axis, index) => index % Axes[axis]);
    }

    // A layout with channel axes of new sizes, each new position taking the channel at the old position that
    // `oldIndex(axis, newIndex)` names per axis (axes of both layouts line up one to one).
    private ChannelLayout Remap(int[] oldAxes, int[] newAxes, Func<int, int, int> oldIndex)
    {
        int[] channelAxes = Enumerable.Range(0, newAxes.Length).Where(a => newAxes[a] != Token).ToArray();
        long count = channelAxes.Aggregate(1L, (p, a) => p * newAxes[a]);
        var order = new int[count];
        var index = new int[channelAxes.Length];
        for (long q = 0; q < count; q++)
        {
            int old = 0;
            for (int k = 0; k < channelAxes.Length; k++)
                old = old * oldAxes[channelAxes[k]] + oldIndex(channelAxes[k], index[k]);
            order[q] = Order[old];
            for (int k = channelAxes.Length - 1; k >= 0; k--)
            {
                if (++index[k] < newAxes[channelAxes[k]])
                    break;
                index[k] = 0;
            }
        }
        return new ChannelLayout(true, newAxes, order);
    }

    /// <summary>
    /// As input B of a MatMul <c>P · V</c> whose P does not depend on V: each output element is a sum over V's axis -2
    /// weighted by P, so channels survive when that axis holds tokens. Batch axes broadcast from the right.
    /// </summary>
    public ChannelLayout? AsMatMulRightOperand() =>
        Axes.Length >= 2 && Axes[^2] == Token ? this : null;
}
