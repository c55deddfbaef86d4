"""French words of the insurer's bulk member exports, under a second staff member's approval
(exports.po):

python tools/po.py tools/fr_exports.py src/rempart/web/locale/fr/LC_MESSAGES/exports.po
"""
# ruff: noqa: E501  (one translation per line, however long)

FR = {
    # The pages' titles and the list.
    "Member exports": "Exports d'adhérents",
    "Member exports to approve": "Exports d'adhérents à approuver",
    "A file of members in clear leaves only when a second staff member approves it. The person who asked downloads it once, within a day of the approval, and each member in it sees the export in their own access log.": "Un fichier d'adhérents en clair ne sort qu'avec l'accord d'un second membre du personnel. La personne qui l'a demandé le télécharge une seule fois, dans la journée qui suit l'accord, et chaque adhérent du fichier voit l'export dans son propre journal des accès.",
    "Ask for an export": "Demander un export",
    "The request was not sent: correct the marked fields. Nothing was written.": "La demande n'a pas été envoyée : corrigez les champs signalés. Rien n'a été enregistré.",
    "Why this export is needed": "Pourquoi cet export est nécessaire",
    "One line, 10 to 500 characters, without anyone's personal data: the approver and the members will read it.": "Une ligne de 10 à 500 caractères, sans donnée personnelle de quiconque : la personne qui approuve et les adhérents la liront.",
    "Members": "Adhérents",
    "Every member of the insurer": "Tous les adhérents de l'organisme",
    "Members of product %(code)s (%(name)s)": "Adhérents du produit %(code)s (%(name)s)",
    "Ask for a second staff member's approval": "Demander l'accord d'un second membre du personnel",
    "Export requests": "Demandes d'export",
    "The insurer's member exports, those waiting first": "Les exports d'adhérents de l'organisme, ceux en attente d'abord",
    "Asked on": "Demandé le",
    "Asked by": "Demandé par",
    "Why": "Motif",
    "Status": "État",
    "Decided by": "Décidé par",
    "What to do": "À faire",
    "You": "Vous",
    "Product %(code)s": "Produit %(code)s",
    "Every member": "Tous les adhérents",
    "%(n)s people": "%(n)s personnes",
    "until %(when)s": "jusqu'au %(when)s",
    "Approve": "Approuver",
    "Refuse": "Refuser",
    "A second staff member must decide it": "Un second membre du personnel doit en décider",
    "Download the file (once)": "Télécharger le fichier (une seule fois)",
    "Withdraw": "Retirer",
    "No member export has been asked for yet.": "Aucun export d'adhérents n'a encore été demandé.",
    # Statuses.
    "Waiting for a second staff member": "En attente d'un second membre du personnel",
    "Approved: the requester may download it": "Approuvé : la personne qui l'a demandé peut le télécharger",
    "Refused": "Refusé",
    "Downloaded": "Téléchargé",
    "Lapsed or withdrawn": "Expiré ou retiré",
    # What happened, after a form.
    "Your request waits for a second staff member's approval. Nothing was exported.": "Votre demande attend l'accord d'un second membre du personnel. Rien n'a été exporté.",
    "The export is approved: its requester may download it once, within a day.": "L'export est approuvé : la personne qui l'a demandé peut le télécharger une seule fois, dans la journée.",
    "The export was refused: nothing was exported.": "L'export a été refusé : rien n'a été exporté.",
    "Your request was withdrawn: nothing was exported.": "Votre demande a été retirée : rien n'a été exporté.",
    "This export was decided, withdrawn or downloaded meanwhile: see its status below.": "Cet export a été décidé, retiré ou téléchargé entre-temps : voyez son état ci-dessous.",
    "You asked for this export: a second staff member must decide it. Nothing was changed.": "Vous avez demandé cet export : un second membre du personnel doit en décider. Rien n'a été modifié.",
    "Only the staff member who asked for an export may withdraw or download it.": "Seule la personne qui a demandé un export peut le retirer ou le télécharger.",
    "This export was not downloaded within a day of its approval, so it lapsed. Ask for it again.": "Cet export n'a pas été téléchargé dans la journée qui a suivi son approbation : il a expiré. Demandez-le à nouveau.",
    "This export cannot be downloaded: see its status below.": "Cet export ne peut pas être téléchargé : voyez son état ci-dessous.",
    # The form's fields.
    "Say why in one line of 10 to 500 characters, without anyone's personal data.": "Dites pourquoi en une ligne de 10 à 500 caractères, sans donnée personnelle de quiconque.",
    "Choose one of the insurer's products, or every member.": "Choisissez l'un des produits de l'organisme, ou tous les adhérents.",
}
