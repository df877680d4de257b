"""French phrasings of regions' messages without a return, as clerks write them, with what they ask.

Each entry: (text, expected). ``expected`` is the set of intents (parsers.mail.intents.INTENTS)
the message must be answered with; ``FORWARD`` when no automatic answer fits (a person must read
it); ``ATTACHMENT`` when the message announces a file it does not carry, or says nothing (fewer
than three words besides politeness): answered as a return, ``no_return_found``. Out-of-office
replies are in ``OUT_OF_OFFICE``: they never reach the recogniser (``parsers.mail.automated``
ignores them).
"""

from __future__ import annotations

FORWARD = "forward"
ATTACHMENT = "attachment"

QUOTED = (
    "\n\n-----Message d'origine-----\nDe : Conventions politique de la ville <conventions@ville.gouv.fr>\n"
    "Envoyé : mardi 6 mai 2014 10:12\nObjet : Bilan 2013 – Bretagne : accusé de réception\n\n"
    "Bonjour,\nNous avons bien reçu votre message. Le dossier est incomplet : il manque l'analyse qualitative,"
    " le tableau de bord, quel format ? La date limite est le 15 mai 2014.\n"
)
QUOTED_GT = ("\n\nLe 6 mai 2014 à 10:12, conventions@ville.gouv.fr a écrit :\n> Date limite : 15 mai 2014 ?\n"
             "> Qui contacter ?\n")
SIGNATURE = ("\n\nCordialement,\n\nMarie Le Goff\nChargée de mission politique de la ville – SGAR Bretagne\n"
             "Tél. 02 99 02 10 35\nQuel format ? Pour toute question : "
             "sgar@bretagne.pref.gouv.fr")
SIGNATURE_SHORT = "\n\nBien à vous\nJ. Martin, SGAR"


def _q(text: str) -> str:
    return "Bonjour,\n\n" + text + SIGNATURE + QUOTED


def _g(text: str) -> str:
    return text + SIGNATURE_SHORT + QUOTED_GT


RECEIPT = {"receipt"}
DEADLINE = {"deadline"}
FORMAT = {"format"}
CONTACT = {"contact"}
TEMPLATE = {"template"}
EXTENSION = {"extension"}

CORPUS: list[tuple[str, set[str] | str]] = [
    # ---------------------------------------------------------------- receipt / state of the dossier
    ("Pouvez-vous me confirmer la bonne réception de notre bilan envoyé la semaine dernière ?", RECEIPT),
    ("pouvez vous me confirmer la bonne reception de notre bilan envoye la semaine derniere ?", RECEIPT),
    ("POUVEZ-VOUS ME CONFIRMER LA BONNE RÉCEPTION DE NOTRE BILAN ?", RECEIPT),
    ("Avez-vous bien reçu notre tableau de bord ?", RECEIPT),
    ("avez vous bien recu notre envoi du 5 mai", RECEIPT),
    ("Avez vous bien recu nos fichiers ?", RECEIPT),
    ("Merci de me confirmer la réception de notre dossier.", RECEIPT),
    ("Merci de bien vouloir nous accuser réception de notre envoi.", RECEIPT),
    ("Je souhaiterais un accusé de réception pour notre bilan.", RECEIPT),
    ("Pourriez-vous m'indiquer où en est notre dossier ?", RECEIPT),
    ("Où en est le dossier de la région ?", RECEIPT),
    ("ou en est notre dossier svp", RECEIPT),
    ("Notre dossier est-il complet ?", RECEIPT),
    ("Le dossier est il bien complet de votre côté ?", RECEIPT),
    ("Manque-t-il quelque chose à notre dossier ?", RECEIPT),
    ("Est-ce qu'il manque encore quelque chose ?", RECEIPT),
    ("Nos fichiers sont-ils bien arrivés ?", RECEIPT),
    ("Le bilan a-t-il bien été reçu ?", RECEIPT),
    ("Je n'ai pas eu de retour suite à notre envoi, pouvez-vous vérifier ?", RECEIPT),
    ("Pouvez-vous nous confirmer que notre bilan a bien été enregistré ?", RECEIPT),
    ("Pouvez vous me confirmer la bonne recpetion de notre bilan ? merci", FORWARD),  # typo in the only cue
    ("Pouvez-vous me confirmer la bonne réceptoin du dossier, avez-vous bien reçu le tableau ?", RECEIPT),
    ("Quel est l'état de notre dossier ?", RECEIPT),
    ("Pourriez vous me dire quel est le statut de notre envoi ?", RECEIPT),
    ("Je me permets de vous demander si vous avez bien reçu notre bilan.", RECEIPT),
    ("Est ce que notre analyse qualitative est bien arrivée ?", RECEIPT),
    ("Avez-vous reçu le tableau corrigé que j'ai envoyé hier ?", RECEIPT),
    ("Sauriez-vous me dire si notre envoi est conforme ?", RECEIPT),
    (_q("Pouvez-vous me confirmer la bonne réception de notre bilan ?"), RECEIPT),
    (_g("avez vous bien recu notre dossier ?"), RECEIPT),
    (_q("Notre dossier est-il complet désormais ?"), RECEIPT),
    (_g("Merci de me confirmer la réception de nos fichiers."), RECEIPT),
    # ---------------------------------------------------------------- the deadline
    ("La date limite est-elle toujours le 15 mai ?", DEADLINE),
    ("la date limite est elle toujours le 15 mai", FORWARD),  # no question mark, no asking word
    ("Quelle est la date limite de remise du bilan ?", DEADLINE),
    ("quelle est la date butoir ?", DEADLINE),
    ("Jusqu'à quand pouvons-nous envoyer le bilan ?", DEADLINE),
    ("Avant quelle date devons-nous transmettre le tableau ?", DEADLINE),
    ("Pour quand faut-il envoyer les éléments ?", DEADLINE),
    ("Quelle est l'échéance ?", DEADLINE),
    ("Pouvez-vous me rappeler l'échéance de transmission ?", DEADLINE),
    ("Quand faut-il rendre le bilan ?", DEADLINE),
    ("QUELLE EST LA DATE LIMITE ?", DEADLINE),
    ("Quel est le délai de transmission ?", DEADLINE),
    ("Merci de me préciser la date limite d'envoi.", DEADLINE),
    ("Bonjour, la deadline est-elle maintenue ?", DEADLINE),
    (_q("La date limite est-elle toujours le 15 mai ?"), DEADLINE),
    (_g("jusqu a quand avons nous ?"), DEADLINE),
    # ---------------------------------------------------------------- format and content
    ("Sous quel format devons-nous envoyer le tableau ?", FORMAT),
    ("Quel format est attendu pour l'analyse qualitative ?", FORMAT),
    ("Peut-on envoyer le tableau en PDF ?", FORMAT),
    ("Acceptez-vous les fichiers au format ODS ?", FORMAT),
    ("Le tableau doit-il être au format Excel ?", FORMAT),
    ("Quels documents faut-il transmettre ?", FORMAT),
    ("Quelles pièces devons-nous envoyer ?", FORMAT),
    ("Que faut-il envoyer exactement ?", FORMAT),
    ("Qu'est-ce qu'il faut transmettre pour le bilan ?", FORMAT),
    ("Faut-il aussi envoyer l'analyse qualitative ?", FORMAT),
    ("Doit-on joindre une analyse qualitative en plus du tableau ?", FORMAT),
    ("En quoi consiste le bilan demandé ?", FORMAT),
    ("Faut-il envoyer le bilan par courrier avec la signature du préfet ?", FORMAT),
    ("Peut-on faire plusieurs envois ?", FORMAT),
    ("Par quel moyen faut-il transmettre le bilan ?", FORMAT),
    ("sous quel format envoyer l analyse ? word ou pdf", FORMAT),
    (_q("Sous quel format devons-nous envoyer l'analyse ?"), FORMAT),
    (_g("Quels documents faut-il fournir ?"), FORMAT),
    # ---------------------------------------------------------------- contact
    ("Qui contacter pour une question sur les indicateurs ?", CONTACT),
    ("À qui dois-je m'adresser pour une question technique ?", CONTACT),
    ("a qui puis je poser une question sur le tableau ?", CONTACT),
    ("Qui est notre interlocuteur au niveau national ?", CONTACT),
    ("Pourriez-vous me communiquer vos coordonnées ?", CONTACT),
    ("Y a-t-il une personne à contacter pour le bilan ?", CONTACT),
    ("Pouvez-vous m'indiquer un interlocuteur pour la convention emploi ?", CONTACT),
    ("Est-il possible de vous joindre par téléphone ?", CONTACT),
    ("Qui est le référent pour ce bilan ?", CONTACT),
    (_q("Qui contacter en cas de difficulté ?"), CONTACT),
    # ---------------------------------------------------------------- the template
    ("Pouvez-vous me renvoyer le modèle de tableau ?", TEMPLATE),
    ("Pourriez vous nous envoyer le tableau vierge ?", TEMPLATE),
    ("Merci de me transmettre la trame à remplir.", TEMPLATE),
    ("je ne trouve pas le tableau, pouvez vous me l envoyer ?", TEMPLATE),
    ("Le lien vers le tableau de bord ne fonctionne pas, pouvez-vous me l'envoyer ?", TEMPLATE),
    ("Serait-il possible d'avoir le fichier Excel à remplir ?", TEMPLATE),
    ("Pouvez-vous me renvoyer le fichier vierge, j'ai écrasé le mien ?", TEMPLATE),
    ("merci de m envoyer le modele", TEMPLATE),
    ("Pouvez-vous nous faire parvenir la matrice du tableau de bord ?", TEMPLATE),
    ("Pourriez-vous me renvoyer le tableau ?", TEMPLATE),
    ("Où trouver le modèle de tableau de bord ?", TEMPLATE),
    (_q("Pouvez-vous me renvoyer le modèle ?"), TEMPLATE),
    (_g("merci de m envoyer le tableau vierge"), TEMPLATE),
    # ---------------------------------------------------------------- more time
    ("Nous sollicitons un délai supplémentaire jusqu'au 30 mai.", EXTENSION),
    ("Serait-il possible d'obtenir un délai supplémentaire ?", EXTENSION),
    ("nous aurions besoin d un delai supplementaire d une semaine", EXTENSION),
    ("Pouvons-nous bénéficier d'une prolongation jusqu'au 6 juin ?", EXTENSION),
    ("Je vous demande un report de la date limite au 31/05/2014.", EXTENSION),
    ("La date limite peut-elle être repoussée à fin mai ?", EXTENSION),
    ("Est-il possible de décaler l'échéance de quinze jours ?", EXTENSION),
    ("Nous ne pourrons pas tenir le délai, pourriez-vous nous accorder un délai jusqu'au 28 mai ?", EXTENSION),
    ("Il nous faudrait quelques jours de plus.", EXTENSION),
    ("Nous avons besoin de plus de temps pour consolider les indicateurs.", EXTENSION),
    ("Nous enverrons le bilan en retard, vers le 25 mai.", EXTENSION),
    ("Une prolongation est-elle envisageable ?", EXTENSION),
    ("DEMANDE DE REPORT DU DELAI AU 30 MAI", EXTENSION),
    ("Pourriez-vous nous accorder une extension jusqu'au 2 juin 2014 ?", EXTENSION),
    ("Nous demandons deux semaines supplémentaires.", EXTENSION),
    ("Les services départementaux n'ont pas répondu : nous demandons un délai de grâce.", EXTENSION),
    ("pouvez vous prolonger notre delai jusqu au 30/05 ?", EXTENSION),
    ("La date limite du 15 mai pourrait-elle être reportée au 30 mai ?", EXTENSION),
    (_q("Nous sollicitons un report au 30 mai."), EXTENSION),
    (_g("Serait il possible d avoir une prolongation de 10 jours ?"), EXTENSION),
    ("Merci pour la prolongation accordée.", FORWARD),
    ("Pas besoin de report, le bilan arrive demain.", FORWARD),
    # ---------------------------------------------------------------- several questions
    ("Pouvez-vous me confirmer la bonne réception de notre bilan envoyé la semaine dernière ? "
     "Et la date limite est-elle toujours le 15 mai ?", {"receipt", "deadline"}),
    ("Avez-vous bien reçu notre tableau ? Sous quel format faut-il envoyer l'analyse ?", {"receipt", "format"}),
    ("Pouvez-vous me renvoyer le modèle ? Et quelle est la date limite ?", {"template", "deadline"}),
    ("Notre dossier est-il complet ? Sinon, pouvons-nous obtenir un délai supplémentaire ?", {"receipt", "extension"}),
    ("Qui contacter pour les indicateurs ? Quelle est l'échéance ?", {"contact", "deadline"}),
    ("Avez-vous reçu notre bilan ? Par ailleurs, combien de QPV sont concernés dans la région ?", FORWARD),
    ("Quel format pour le tableau ? Et le préfet doit-il signer une lettre ?", FORWARD),
    # ---------------------------------------------------------------- forgotten attachments (cover notes)
    ("Veuillez trouver ci-joint le bilan de la région Bretagne.", ATTACHMENT),
    ("veuillez trouver ci joint notre tableau de bord", ATTACHMENT),
    ("Vous trouverez en pièce jointe l'analyse qualitative.", ATTACHMENT),
    ("Je vous transmets le tableau de bord complété.", ATTACHMENT),
    ("Nous vous adressons le bilan 2013 des conventions.", ATTACHMENT),
    ("Ci-joint le tableau corrigé.", ATTACHMENT),
    ("CI-JOINT NOTRE BILAN", ATTACHMENT),
    ("En PJ le tableau de bord, cordialement", ATTACHMENT),
    ("Je vous fais parvenir notre bilan, comme convenu.", ATTACHMENT),
    ("Veuillez trouver ci-joint la version corrigée. Pouvez-vous me confirmer la bonne réception ?", ATTACHMENT),
    (_q("Veuillez trouver ci-joint le bilan."), ATTACHMENT),
    (_g("ci-joint le tableau de bord rempli"), ATTACHMENT),
    # ---------------------------------------------------------------- anything else: a person
    ("Combien de quartiers prioritaires compte la région ?", FORWARD),
    ("Le préfet souhaite une réunion avec le CGET, est-ce possible ?", FORWARD),
    ("Comment calculer l'indicateur I12 ?", FORWARD),
    ("L'indicateur sur les contrats aidés doit-il inclure les emplois d'avenir ?", FORWARD),
    ("Nous avons bien reçu votre relance, le bilan suivra.", FORWARD),
    ("Je suis la nouvelle chargée de mission, merci de mettre à jour vos listes.", FORWARD),
    ("Merci pour votre retour.", ATTACHMENT),
    ("Merci beaucoup, bonne journée.", FORWARD),
    ("Les données départementales ne sont pas encore disponibles.", FORWARD),
    ("Faut-il distinguer ZUS et QPV dans les observations ?", FORWARD),
    ("Pourquoi notre tableau a-t-il été refusé ? Les chiffres sont justes.", FORWARD),
    ("Je conteste l'erreur sur la cellule G12.", FORWARD),
    ("Est-il prévu une interface internet pour les prochains bilans ?", FORWARD),
    ("Pouvez-vous nous donner les chiffres des autres régions ?", FORWARD),
    ("Le SGAR change d'adresse électronique à compter du 1er juin.", FORWARD),
    ("ok merci", ATTACHMENT),  # nothing to read: answered as a message without its return
    ("Reçu, merci.", ATTACHMENT),
    ("Bonjour, je reviens vers vous concernant la convention avec le ministère des sports.", FORWARD),
    ("Nous reportons les chiffres dans la colonne régionale ?", FORWARD),
    ("Faut-il se reporter à la circulaire de 2013 ?", FORWARD),
    ("Quelle est la différence entre ZUS et QPV pour l'indicateur 102 ?", FORWARD),
    ("Pouvez-vous nous expliquer la méthode de calcul du taux ?", FORWARD),
    ("Je serai absente, merci d'écrire à mon collègue.", FORWARD),
    ("Le tableau de la DIRECCTE est-il à joindre ?", FORWARD),
    ("Qu'en pensez-vous ?", FORWARD),
    (_q("Comment renseigner l'indicateur 176 ?"), FORWARD),
    (_g("Pouvez-vous nous appeler ?"), FORWARD),
    (_q("Merci pour votre retour."), ATTACHMENT),
]

# Out-of-office answers: automated (Auto-Submitted / subject), stored but never answered.
OUT_OF_OFFICE: list[tuple[str, str]] = [
    ("Réponse automatique : absent", "Je suis absente du bureau jusqu'au 19 mai. En cas d'urgence, contactez le SGAR."),
    ("Absence du bureau", "Je suis en congés, je prendrai connaissance de votre message à mon retour le 26 mai."),
    ("Automatic reply: Bilan 2013",
     "Bonjour, je suis absent jusqu'au 20 mai. Quelle est la date limite ? Cordialement"),
    ("Réponse automatique : Bilan 2013 – Bretagne", "Absente, retour le lundi 19 mai 2014."),
    ("Out of Office", "I am out of the office until May 19th."),
]

# Written after the rules were tuned on CORPUS, and never used to tune them: measured and reported
# (docs/conversation.md), to show how the rules do on phrasings they were not fitted to.
HELD_OUT: list[tuple[str, set[str] | str]] = [
    ("Bonjour, auriez-vous la gentillesse de me confirmer que notre envoi vous est bien parvenu ?", RECEIPT),
    ("Je voulais m'assurer que vous aviez bien reçu nos documents.", FORWARD),  # no asking word: a person
    ("Le dossier de la région Bretagne est-il considéré comme complet ?", RECEIPT),
    ("Pouvez-vous vérifier que le tableau est bien arrivé ?", RECEIPT),
    ("Rappelez-moi la date limite svp ?", DEADLINE),
    ("Est-ce que le 15 mai est une date impérative ?", FORWARD),
    ("A quelle date au plus tard devons-nous répondre ?", FORWARD),
    ("Est-il possible de transmettre le bilan en format PDF uniquement ?", FORMAT),
    ("Quelles sont les pièces attendues pour ce bilan ?", FORMAT),
    ("L'analyse qualitative peut-elle être dans le corps du mail ?", FORWARD),
    ("Pourriez-vous me donner le nom d'un interlocuteur au CGET ?", CONTACT),
    ("Qui puis-je appeler pour une question sur le tableau ?", FORWARD),
    ("Pouvez-vous me renvoyer la trame du tableau de bord ?", TEMPLATE),
    ("Nous n'arrivons pas à ouvrir le modèle, pouvez-vous nous l'envoyer de nouveau ?", TEMPLATE),
    ("Un délai supplémentaire jusqu'au 6 juin serait-il envisageable ?", EXTENSION),
    ("Nous souhaiterions reporter l'envoi au 27 mai.", EXTENSION),
    ("Compte tenu des élections, le bilan sera transmis avec un peu de retard.", EXTENSION),
    ("Merci pour votre message. Le préfet valide le bilan cette semaine.", FORWARD),
    ("Le chiffre de l'indicateur 134 est-il régional ou départemental ?", FORWARD),
    ("Pouvez-vous me dire pourquoi l'indicateur I07 est en erreur ?", FORWARD),
    ("Je vous adresse ci-après nos observations sur le tableau.", FORWARD),
    ("Vous trouverez notre bilan en pièce jointe.", ATTACHMENT),
    ("PJ : bilan 2013", FORWARD),
    ("Où en êtes-vous de l'examen de notre dossier ?", FORWARD),
    ("Quel est le format attendu pour les pourcentages dans le tableau ?", FORWARD),  # inside the table
]
