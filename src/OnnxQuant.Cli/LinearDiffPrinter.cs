using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Smoothing;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders the semantic diff: one row per linear, then the whole-graph changes in a short section.</summary>
public static class LinearDiffPrinter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Print(IAnsiConsole console, LinearDiff d)
    {
        var table = new Table().Border(TableBorder.Simple)
            .Title($"{d.Linears.Count} linears with a constant weight ({d.Linears.Count(r => r.Scheme != LinearScheme.Float)} rewritten, {d.Linears.Count(r => r.Scheme == LinearScheme.Float)} float)");
        bool anyKept = d.Linears.Any(r => r.KeptText is not null);
        table.AddColumns("#", "linear", "role", "before", "after", "bytes", "smoothing", "float ch");
        if (anyKept)
            table.AddColumn("kept because");
        for (int i = 0; i < d.Linears.Count; i++)
        {
            var r = d.Linears[i];
            var cells = new List<string>
            {
                (i + 1).ToString(Inv), Markup.Escape(r.Name), LinearRoles.Short(r.Role),
                Markup.Escape($"{(r.Op == "Gemm" ? "Gemm " : "")}{r.Dtype} {r.K}x{r.N} {Format.Bytes(r.BytesBefore)}"),
                Markup.Escape($"{Scheme(r)} {Format.Bytes(r.BytesAfter)}"), Signed(r.BytesDelta), Markup.Escape(Smoothing(r.Smoothing)),
                r.FloatChannels == 0 ? "" : r.FloatChannels.ToString(Inv),
            };
            if (anyKept)
                cells.Add(Markup.Escape(r.KeptText ?? ""));
            table.AddRow(cells.ToArray());
        }
        console.Write(table);
        if (d.ComputedProducts.Count > 0)
            console.WriteLine($"not listed: {d.ComputedProducts.Count} products of two activations (attention), which have no weight: {Format.Names(d.ComputedProducts, 4)}");
        PrintGraph(console, d.Graph, d.Linears.Sum(r => r.BytesDelta));
    }

    /// <summary>"W8A8 static", "W4 g128 asym awq", "float MatMul".</summary>
    public static string Scheme(LinearChange r) => r.Scheme switch
    {
        LinearScheme.W8A8Static => "W8A8 static",
        LinearScheme.W8A8Dynamic => "W8A8 dynamic",
        LinearScheme.W8A8QLinear => "W8A8 qlinear",
        LinearScheme.W8A8Qdq => "W8A8 qdq",
        LinearScheme.W4 when r.W4 is { } w => $"W{w.Bits} g{w.BlockSize} {(w.ZeroPoints ? "asym" : "sym")} {(r.Smoothing?.Method == SmoothingMethod.Awq ? "awq" : "rtn")}",
        LinearScheme.W4 => "W4",
        _ => $"float {r.OpAfter}",
    };

    /// <summary>"sq a=0.85 -> norm" (folded into gamma), "awq r=0.35 -> prev linear" (its columns), "Mul" (an inserted Mul).</summary>
    public static string Smoothing(LinearSmoothing? s)
    {
        if (s is null)
            return "";
        string fold = s.Fold switch
        {
            FoldKind.NormGamma => "norm",
            FoldKind.LinearColumns => "prev linear",
            _ => "Mul",
        };
        if (s.Method is not { } method)
            return fold;
        string alpha = s.Alpha is not { } a ? "" : method == SmoothingMethod.Awq ? $" r={a.ToString("0.00", Inv)}" : $" a={a.ToString("0.00", Inv)}";
        return $"{(method == SmoothingMethod.Awq ? "awq" : "sq")}{alpha} -> {fold}";
    }

    private static void PrintGraph(IAnsiConsole console, GraphChanges g, long rowsDelta)
    {
        long total = g.InitializerBytesAfter - g.InitializerBytesBefore;
        console.WriteLine();
        console.WriteLine($"initializers {Format.Bytes(g.InitializerBytesBefore)} -> {Format.Bytes(g.InitializerBytesAfter)} ({Signed(total)} B): linears {Signed(rowsDelta)} B"
            + string.Concat(g.Buckets.Where(b => b.BytesAfter != b.BytesBefore).Select(b => $", {Bucket(b.Kind)} {Signed(b.BytesAfter - b.BytesBefore)} B")));
        foreach (var b in g.Buckets.Where(b => b.Kind != SharedKind.Unchanged))
            console.WriteLine($"  {Bucket(b.Kind)}: {b.CountBefore} -> {b.CountAfter} tensors, {Format.Bytes(b.BytesBefore)} -> {Format.Bytes(b.BytesAfter)}");
        if (g.ChangedInPlace.Count > 0)
            console.WriteLine($"  changed in place ({g.ChangedInPlace.Count}, e.g. norm gamma/beta scaled by smoothing): {Format.Names(g.ChangedInPlace.Select(c => c.Name), 4)}");
        if (g.InsertedMuls.Count > 0)
            console.WriteLine($"  inserted smoothing Muls ({g.InsertedMuls.Count}): {Format.Names(g.InsertedMuls, 4)}");
        foreach (var o in g.Opsets)
            console.WriteLine($"  opset {o.Domain}: {o.Before?.ToString(Inv) ?? "not imported"} -> {o.After?.ToString(Inv) ?? "not imported"}");
        if (g.MetadataChanged.Count > 0)
            console.WriteLine($"  metadata: {string.Join(", ", g.MetadataChanged)}");
        console.WriteLine($"  {g.ProvenanceNodes} nodes carry provenance (raw node lists: --nodes)");
    }

    private static string Bucket(SharedKind kind) => kind switch
    {
        SharedKind.Unchanged => "unchanged",
        SharedKind.ChangedValues => "changed in place",
        SharedKind.ActivationQuantizers => "activation quantizers",
        SharedKind.SmoothingMuls => "smoothing Muls",
        _ => "other",
    };

    private static string Signed(long bytes) => bytes.ToString("+#,0;-#,0;0", Inv);
}
