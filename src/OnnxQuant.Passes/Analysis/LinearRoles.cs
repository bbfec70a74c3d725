namespace OnnxQuant.Analysis;

/// <summary>What a linear computes in a transformer block, as far as its name tells.</summary>
public enum LinearRole
{
    Unknown,
    Query,
    Key,
    Value,
    QueryKeyValue,
    Output,
    Gate,
    Up,
    GateUp,
    Down,
    Head,
}

/// <summary>Recognises a linear's role from the names common exporters give (torch.onnx module paths, the genai builder).</summary>
public static class LinearRoles
{
    // Checked in order: packed forms before their parts, "out_proj" before "o_proj"'s looser cousins.
    private static readonly (string Fragment, LinearRole Role)[] Fragments =
    [
        ("lm_head", LinearRole.Head),
        ("qkv", LinearRole.QueryKeyValue),
        ("c_attn", LinearRole.QueryKeyValue),
        ("gate_up", LinearRole.GateUp),
        ("q_proj", LinearRole.Query),
        ("k_proj", LinearRole.Key),
        ("v_proj", LinearRole.Value),
        ("o_proj", LinearRole.Output),
        ("out_proj", LinearRole.Output),
        ("attention/output", LinearRole.Output),
        ("gate_proj", LinearRole.Gate),
        ("up_proj", LinearRole.Up),
        ("down_proj", LinearRole.Down),
        ("/query", LinearRole.Query),
        ("/key", LinearRole.Key),
        ("/value", LinearRole.Value),
        ("intermediate", LinearRole.Up),
        ("fc1", LinearRole.Up),
        ("fc2", LinearRole.Down),
        ("/output/", LinearRole.Down),
    ];

    public static LinearRole FromName(string name)
    {
        string lower = name.ToLowerInvariant();
        foreach (var (fragment, role) in Fragments)
            if (lower.Contains(fragment, StringComparison.Ordinal))
                return role;
        return LinearRole.Unknown;
    }

    /// <summary>"q", "gate", "head"; "-" when unknown.</summary>
    public static string Short(LinearRole role) => role switch
    {
        LinearRole.Query => "q",
        LinearRole.Key => "k",
        LinearRole.Value => "v",
        LinearRole.QueryKeyValue => "qkv",
        LinearRole.Output => "o",
        LinearRole.Gate => "gate",
        LinearRole.Up => "up",
        LinearRole.GateUp => "gate_up",
        LinearRole.Down => "down",
        LinearRole.Head => "head",
        _ => "-",
    };
}
