using OnnxQuant.Analysis;
using OnnxQuant.IR;

namespace OnnxQuant.Review;

/// <summary>
/// A token embedding of the original model and its form in the rewrite: still a float Gather, or GatherBlockQuantized
/// with its bits, block size and zero points; bytes of the table before and of the tensors the Gather reads after, and
/// the head node that reads the same codes when a tied head shares them.
/// </summary>
public sealed record EmbeddingChange(string Table, int Rows, int Width, string Dtype, long BytesBefore, string OpAfter, int? Bits,
    int? BlockSize, bool ZeroPoints, long BytesAfter, string? SharedWith)
{
    /// <summary>Token embeddings of <paramref name="before"/> matched by their Gathers' names in <paramref name="after"/>.</summary>
    public static IReadOnlyList<EmbeddingChange> Compare(Graph before, Graph after)
    {
        var changes = new List<EmbeddingChange>();
        foreach (var e in TokenTables.Embeddings(before))
        {
            long bytesBefore = before.GetInitializer(e.Table)!.ByteLength;
            var now = after.Nodes.FirstOrDefault(n => n.Name == e.Gathers[0].Name && n.Output.SequenceEqual(e.Gathers[0].Output));
            string dtype = ElementType.Name(e.Type);
            if (now is null || !now.IsMicrosoft("GatherBlockQuantized"))
            {
                long kept = now?.InputAt(0) is { } t && after.GetConstant(t) is { } table ? table.ByteLength : 0;
                changes.Add(new EmbeddingChange(e.Table, e.Rows, e.Width, dtype, bytesBefore, now?.OpType ?? "(removed)", null, null, false, kept, null));
                continue;
            }
            // The codes may come through a Reshape of MatMulNBits' B (a tied head sharing them).
            string codes = after.ProducerIs(now.Input[0], "Reshape") is { } reshape ? reshape.Input[0] : now.Input[0];
            string? head = after.Consumers(codes).FirstOrDefault(n => n.IsMicrosoft("MatMulNBits"))?.Name;
            long bytesAfter = new[] { codes, now.InputAt(2), now.InputAt(3) }.OfType<string>().Where(n => n.Length > 0)
                .Sum(n => after.GetInitializer(n)?.ByteLength ?? 0);
            changes.Add(new EmbeddingChange(e.Table, e.Rows, e.Width, dtype, bytesBefore, now.OpType, (int)now.GetInt("bits", 4),
                (int)now.GetInt("block_size", 128), now.InputAt(3) is { Length: > 0 }, bytesAfter, head));
        }
        return changes;
    }
}
